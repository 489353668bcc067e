// Errors of requests that the brokers' ACLs refuse: they say what was denied and to whom.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// ErrNotAuthorized is wrapped, with the broker's error (sarama.ErrTopicAuthorizationFailed,
// ErrGroupAuthorizationFailed, ErrTransactionalIDAuthorizationFailed or
// ErrClusterAuthorizationFailed), by the errors of requests that the brokers' ACLs refused.
// Retrying does not help until an administrator grants the permission, so a Source or a
// Producer that gets one stops (a Producer's is permanent, see stream.IsPermanent).
var ErrNotAuthorized = errors.New("kafka: not authorized")

// isNotAuthorized reports whether err is an authorization failure of the brokers.
func isNotAuthorized(err error) bool {
	for _, k := range []sarama.KError{sarama.ErrTopicAuthorizationFailed, sarama.ErrGroupAuthorizationFailed,
		sarama.ErrTransactionalIDAuthorizationFailed, sarama.ErrClusterAuthorizationFailed} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// access names what a request needed, for the error text of a refusal.
type access struct {
	topics []string
	group  string
	txnID  string
	write  bool // the topics were written, not read
	create bool // the topics were created
}

// notAuthorized describes an authorization failure: the resource, the principal the brokers
// see and the permission to grant. Other errors are returned as they are.
func (c *Config) notAuthorized(err error, a access) error {
	if !isNotAuthorized(err) || errors.Is(err, ErrNotAuthorized) {
		return err
	}
	var res, need string
	switch {
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed):
		switch len(a.topics) {
		case 0:
			res = "a topic"
		case 1:
			res = fmt.Sprintf("topic %q", a.topics[0])
		default:
			res = fmt.Sprintf("one of the topics %q", a.topics)
		}
		need = "Read"
		switch {
		case a.create:
			need = "Create"
		case a.write:
			need = "Write"
		}
	case errors.Is(err, sarama.ErrGroupAuthorizationFailed):
		res, need = fmt.Sprintf("consumer group %q", a.group), "Read"
	case errors.Is(err, sarama.ErrTransactionalIDAuthorizationFailed):
		res, need = fmt.Sprintf("transactional id %q", a.txnID), "Write"
	default:
		res, need = "the cluster", "the cluster operation the request needs (IdempotentWrite for an idempotent producer on brokers before 3.0)"
	}
	return fmt.Errorf("%w: the brokers' ACLs deny %s access to %s (grant it %s): %w",
		ErrNotAuthorized, c.principal(), res, need, redact(c, err))
}

// principal describes the identity the brokers authorize, without a secret.
func (c *Config) principal() string {
	switch c.SASL.Mechanism {
	case SASLNone:
		if c.TLS.CertFile != "" || len(c.TLS.CertPEM) > 0 {
			return "the client certificate's subject (mutual TLS)"
		}
		return "the anonymous principal (no SASL user: User:ANONYMOUS)"
	case SASLAWSMSKIAM:
		if c.SASL.AWSRoleARN != "" {
			return fmt.Sprintf("the AWS IAM role %q (SASL %s)", c.SASL.AWSRoleARN, c.SASL.Mechanism)
		}
		return fmt.Sprintf("the AWS IAM identity of the default credential chain (SASL %s)", c.SASL.Mechanism)
	default:
		return fmt.Sprintf("user %q (principal User:%s, SASL %s)", c.SASL.User, c.SASL.User, c.SASL.Mechanism)
	}
}
