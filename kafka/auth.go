// SASL for the sarama config: SCRAM conversations and the AWS MSK IAM token provider.
// Credentials never reach a log or an error text.

package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/xdg-go/scram"
)

// saslInto configures SASL on sc from c.SASL.
func (c *Config) saslInto(sc *sarama.Config) error {
	s := c.SASL
	switch s.Mechanism {
	case SASLNone:
		return nil
	case SASLPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLSCRAMSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case SASLSCRAMSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	case SASLAWSMSKIAM:
		sc.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		sc.Net.SASL.TokenProvider = newIAMTokenProvider(s)
		sc.Net.SASL.Enable = true
		return nil
	default:
		return invalid("SASL.Mechanism", "%q is not supported", s.Mechanism)
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.User = s.User
	sc.Net.SASL.Password = s.Password
	return nil
}

// scramClient adapts xdg-go/scram to sarama.SCRAMClient. One is made per connection.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		// xdg-go/scram only fails on SASLprep of the inputs; its message quotes no input.
		return fmt.Errorf("kafka: scram: %w", err)
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// iamTokenProvider makes MSK IAM auth tokens (a SigV4-presigned URL) and reuses one until
// shortly before it expires, as sarama.AccessTokenProvider asks.
type iamTokenProvider struct {
	gen     func(ctx context.Context) (token string, expiryMs int64, err error)
	timeout time.Duration

	mu      sync.Mutex
	token   string
	expires time.Time
}

func newIAMTokenProvider(s SASL) *iamTokenProvider {
	region, profile, role, session := s.AWSRegion, s.AWSProfile, s.AWSRoleARN, s.AWSRoleSessionName
	if session == "" {
		session = "fleetstream"
	}
	gen := func(ctx context.Context) (string, int64, error) {
		switch {
		case role != "":
			return signer.GenerateAuthTokenFromRole(ctx, region, role, session)
		case profile != "":
			return signer.GenerateAuthTokenFromProfile(ctx, region, profile)
		default:
			return signer.GenerateAuthToken(ctx, region)
		}
	}
	return &iamTokenProvider{gen: gen, timeout: 10 * time.Second}
}

// Token implements sarama.AccessTokenProvider.
func (p *iamTokenProvider) Token() (*sarama.AccessToken, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token != "" && time.Until(p.expires) > time.Minute {
		return &sarama.AccessToken{Token: p.token}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	tok, expiryMs, err := p.gen(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka: AWS MSK IAM token: %w", err)
	}
	p.token, p.expires = tok, time.UnixMilli(expiryMs)
	return &sarama.AccessToken{Token: tok}, nil
}
