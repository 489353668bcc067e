// Config, the connection and consumer group settings shared by Source, Producer and
// DeadLetterSink, with its validation, its redacted String and its translation into a
// sarama config.

package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// ErrInvalidOption is wrapped by every error that a constructor returns for a bad Config or
// option. The message names the setting and says what is wrong with it.
var ErrInvalidOption = errors.New("kafka: invalid option")

func invalid(setting, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, setting, fmt.Sprintf(format, args...))
}

// Offset says where a consumer group starts reading a partition it has no committed offset
// for.
type Offset string

// Initial offsets.
const (
	// OffsetOldest starts at the oldest retained record (the default).
	OffsetOldest Offset = "oldest"
	// OffsetNewest starts at the end: only records produced after the group first joined.
	OffsetNewest Offset = "newest"
)

// Mechanism is a SASL mechanism.
type Mechanism string

// SASL mechanisms.
const (
	// SASLNone disables SASL (the default).
	SASLNone Mechanism = ""
	// SASLPlain is SASL/PLAIN: user and password, only ever over TLS in production.
	SASLPlain Mechanism = "PLAIN"
	// SASLSCRAMSHA256 is SASL/SCRAM-SHA-256.
	SASLSCRAMSHA256 Mechanism = "SCRAM-SHA-256"
	// SASLSCRAMSHA512 is SASL/SCRAM-SHA-512 (Amazon MSK's SCRAM mechanism).
	SASLSCRAMSHA512 Mechanism = "SCRAM-SHA-512"
	// SASLAWSMSKIAM is Amazon MSK IAM access control: SASL/OAUTHBEARER with a token signed
	// with the AWS credentials of the process (see SASL.AWSRegion).
	SASLAWSMSKIAM Mechanism = "AWS_MSK_IAM"
)

// Rebalance strategy names (Config.Rebalance.Strategy).
const (
	// StrategyCooperativeSticky moves only the partitions that change owner and keeps the
	// others consuming through a rebalance (KIP-429). The default.
	StrategyCooperativeSticky = "cooperative-sticky"
	// StrategySticky is the eager sticky assignor: every member stops during a rebalance.
	StrategySticky = "sticky"
	// StrategyRange is Kafka's classic range assignor (eager).
	StrategyRange = "range"
	// StrategyRoundRobin is the round-robin assignor (eager).
	StrategyRoundRobin = "roundrobin"
)

// Config says how to reach a Kafka cluster (Amazon MSK or self-managed) and, for a Source,
// what to consume. The zero values of optional fields select the documented defaults.
//
// Config never prints its secrets: String, GoString and LogValue redact the SASL password and
// TLS key material, and errors built from a Config never contain them.
type Config struct {
	// Brokers are the bootstrap brokers, "host:port". Required.
	Brokers []string
	// ClientID names the client in broker logs and quotas. Default "fleetstream".
	ClientID string
	// Version is the Kafka protocol version the client speaks, e.g. "3.6.0". Default
	// "2.8.0", which every supported Kafka (2.8 to 4.x) and Amazon MSK accept.
	Version string

	// Group is the consumer group. Required for a Source.
	Group string
	// Topics are the topics a Source consumes. Required for a Source. Every instance of a
	// pipeline must list the same topics in the same order: the order defines the
	// pipeline's partition ids (see Source.PartitionID).
	Topics []string
	// InitialOffset is where a partition without a committed offset starts. Default
	// OffsetOldest.
	InitialOffset Offset

	// Rebalance tunes the consumer group protocol.
	Rebalance Rebalance
	// Fetch tunes fetching.
	Fetch Fetch

	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration

	TLS  TLS
	SASL SASL
}

// Rebalance tunes the consumer group protocol.
type Rebalance struct {
	// Strategy is StrategyCooperativeSticky (default), StrategySticky, StrategyRange or
	// StrategyRoundRobin. Every member of a group must use the same one.
	Strategy string
	// SessionTimeout is how long the coordinator waits for heartbeats before it removes a
	// member (a crashed instance's partitions move after this). Default 10s.
	SessionTimeout time.Duration
	// HeartbeatInterval is the heartbeat period. Default 1s (Kafka's Java clients use 3s);
	// at most SessionTimeout/3. A rebalance waits for every member's next heartbeat: a
	// pipeline's repartitions and its input join one group one after the other at start, and
	// each join waits that long.
	HeartbeatInterval time.Duration
	// Timeout is how long a member may take to give up revoked partitions, including the
	// commit of the batch in flight. Default 60s.
	Timeout time.Duration
}

// Fetch tunes how much a consumer asks for at once. The sizes count bytes as stored, so
// compressed: a fetch of compressed records takes about the compression ratio times as much
// memory once decompressed (lz4 or zstd JSON: 4 to 10 times). The defaults keep a Source's
// memory to tens of MiB whatever the ratio (see the package documentation, Memory).
type Fetch struct {
	// MaxBytes is the most bytes fetched per partition and request. Default 512 KiB. A record
	// batch larger than this is still fetched whole (the broker always returns at least one).
	MaxBytes int32
	// RequestMaxBytes is the most bytes one fetch request returns over all its partitions
	// (Kafka's fetch.max.bytes). Default 2 MiB.
	RequestMaxBytes int32
	// MaxWait is how long the broker may wait to fill MinBytes. Default 250ms.
	MaxWait time.Duration
}

// TLS configures transport encryption. Amazon MSK uses TLS on its 9094 (TLS), 9096 (SCRAM)
// and 9098 (IAM) ports with certificates the system roots trust.
type TLS struct {
	// Enable turns TLS on. Setting any other field implies it.
	Enable bool
	// CAFile or CAPEM add a CA to verify brokers with; without either, the system roots are
	// used.
	CAFile string
	CAPEM  []byte
	// CertFile and KeyFile (or CertPEM and KeyPEM) are a client certificate for mutual TLS.
	CertFile, KeyFile string
	CertPEM, KeyPEM   []byte
	// ServerName overrides the name verified in broker certificates.
	ServerName string
	// InsecureSkipVerify disables certificate verification. For tests only.
	InsecureSkipVerify bool
}

func (t TLS) enabled() bool {
	return t.Enable || t.CAFile != "" || len(t.CAPEM) > 0 || t.CertFile != "" || t.KeyFile != "" ||
		len(t.CertPEM) > 0 || len(t.KeyPEM) > 0 || t.ServerName != "" || t.InsecureSkipVerify
}

// SASL configures authentication.
type SASL struct {
	// Mechanism is SASLNone (default), SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512 or
	// SASLAWSMSKIAM.
	Mechanism Mechanism
	// User and Password are the credentials of PLAIN and SCRAM. Password is never printed
	// or logged.
	User, Password string
	// AWSRegion is the region of the MSK cluster, required for SASLAWSMSKIAM. Credentials
	// come from the default AWS chain (environment, shared config, IMDS, IRSA), or from
	// AWSProfile, or by assuming AWSRoleARN.
	AWSRegion  string
	AWSProfile string
	AWSRoleARN string
	// AWSRoleSessionName names the assumed-role session. Default "fleetstream".
	AWSRoleSessionName string
}

const redacted = "[redacted]"

// String describes c with its secrets redacted.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka.Config{Brokers:%v ClientID:%q Version:%q Group:%q Topics:%v InitialOffset:%q Rebalance:%+v Fetch:%+v DialTimeout:%v TLS:%v SASL:%v}",
		c.Brokers, c.ClientID, c.Version, c.Group, c.Topics, c.InitialOffset, c.Rebalance, c.Fetch, c.DialTimeout, c.TLS, c.SASL)
	return b.String()
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue makes slog print c without secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("brokers", c.Brokers),
		slog.String("client_id", c.ClientID),
		slog.String("group", c.Group),
		slog.Any("topics", c.Topics),
		slog.Bool("tls", c.TLS.enabled()),
		slog.Bool("tls_verify", c.TLS.enabled() && !c.TLS.InsecureSkipVerify),
		slog.Any("sasl", c.SASL),
	)
}

// String describes s with the password redacted.
func (s SASL) String() string {
	pw := ""
	if s.Password != "" {
		pw = redacted
	}
	return fmt.Sprintf("{Mechanism:%q User:%q Password:%q AWSRegion:%q AWSProfile:%q AWSRoleARN:%q}",
		s.Mechanism, s.User, pw, s.AWSRegion, s.AWSProfile, s.AWSRoleARN)
}

// GoString is String.
func (s SASL) GoString() string { return s.String() }

// LogValue makes slog print s without the password.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", string(s.Mechanism)), slog.String("user", s.User))
}

// String describes t without key material.
func (t TLS) String() string {
	key := ""
	if len(t.KeyPEM) > 0 {
		key = redacted
	}
	return fmt.Sprintf("{Enable:%v CAFile:%q CAPEM:%d bytes CertFile:%q KeyFile:%q CertPEM:%d bytes KeyPEM:%q ServerName:%q InsecureSkipVerify:%v}",
		t.enabled(), t.CAFile, len(t.CAPEM), t.CertFile, t.KeyFile, len(t.CertPEM), key, t.ServerName, t.InsecureSkipVerify)
}

// GoString is String.
func (t TLS) GoString() string { return t.String() }

// role says which settings a constructor needs.
type role int

const (
	roleConsumer role = iota
	roleProducer
)

// validate checks c for a role. Every problem is reported, each wrapping ErrInvalidOption.
func (c *Config) validate(r role) error {
	var errs []error
	bad := func(setting, format string, args ...any) { errs = append(errs, invalid(setting, format, args...)) }
	if len(c.Brokers) == 0 {
		bad("Brokers", "empty: need at least one host:port")
	}
	for _, b := range c.Brokers {
		if _, port, ok := strings.Cut(b, ":"); !ok || port == "" || strings.TrimSpace(b) != b {
			bad("Brokers", "%q is not host:port", b)
		}
	}
	if c.Version != "" {
		if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
			bad("Version", "%q is not a Kafka version such as 3.6.0", c.Version)
		}
	}
	if r == roleConsumer {
		if c.Group == "" {
			bad("Group", "empty: a Source needs a consumer group")
		}
		if len(c.Topics) == 0 {
			bad("Topics", "empty: a Source needs at least one topic")
		}
		if len(c.Topics) > maxTopics {
			bad("Topics", "%d topics: at most %d", len(c.Topics), maxTopics)
		}
		for i, t := range c.Topics {
			if t == "" {
				bad("Topics", "topic %d is empty", i)
			} else if slices.Index(c.Topics, t) != i {
				bad("Topics", "%q is listed twice", t)
			}
		}
		switch c.InitialOffset {
		case "", OffsetOldest, OffsetNewest:
		default:
			bad("InitialOffset", "%q: want %q or %q", c.InitialOffset, OffsetOldest, OffsetNewest)
		}
		switch c.Rebalance.Strategy {
		case "", StrategyCooperativeSticky, StrategySticky, StrategyRange, StrategyRoundRobin:
		default:
			bad("Rebalance.Strategy", "%q: want one of %s, %s, %s, %s", c.Rebalance.Strategy,
				StrategyCooperativeSticky, StrategySticky, StrategyRange, StrategyRoundRobin)
		}
		rb := c.rebalance()
		if rb.SessionTimeout < time.Second {
			bad("Rebalance.SessionTimeout", "%v: must be at least 1s", rb.SessionTimeout)
		}
		if rb.HeartbeatInterval <= 0 || rb.HeartbeatInterval*3 > rb.SessionTimeout {
			bad("Rebalance.HeartbeatInterval", "%v: must be positive and at most a third of SessionTimeout (%v)", rb.HeartbeatInterval, rb.SessionTimeout)
		}
		if rb.Timeout < time.Second {
			bad("Rebalance.Timeout", "%v: must be at least 1s", rb.Timeout)
		}
		if c.Fetch.MaxBytes < 0 {
			bad("Fetch.MaxBytes", "%d: negative", c.Fetch.MaxBytes)
		}
		if c.Fetch.RequestMaxBytes < 0 {
			bad("Fetch.RequestMaxBytes", "%d: negative", c.Fetch.RequestMaxBytes)
		}
		if c.Fetch.MaxWait < 0 {
			bad("Fetch.MaxWait", "%v: negative", c.Fetch.MaxWait)
		}
	}
	if c.DialTimeout < 0 {
		bad("DialTimeout", "%v: negative", c.DialTimeout)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("TLS.CertFile/TLS.KeyFile", "set both or neither")
	}
	if (len(c.TLS.CertPEM) == 0) != (len(c.TLS.KeyPEM) == 0) {
		bad("TLS.CertPEM/TLS.KeyPEM", "set both or neither")
	}
	if c.TLS.CAFile != "" && len(c.TLS.CAPEM) > 0 {
		bad("TLS.CAFile/TLS.CAPEM", "set one, not both")
	}
	switch c.SASL.Mechanism {
	case SASLNone:
		if c.SASL.User != "" || c.SASL.Password != "" {
			bad("SASL.Mechanism", "empty but SASL.User or SASL.Password is set: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
		if c.SASL.User == "" {
			bad("SASL.User", "empty: %s needs a user", c.SASL.Mechanism)
		}
		if c.SASL.Password == "" {
			bad("SASL.Password", "empty: %s needs a password", c.SASL.Mechanism)
		}
	case SASLAWSMSKIAM:
		if c.SASL.AWSRegion == "" {
			bad("SASL.AWSRegion", "empty: AWS_MSK_IAM needs the cluster's region")
		}
		if c.SASL.AWSProfile != "" && c.SASL.AWSRoleARN != "" {
			bad("SASL.AWSProfile/SASL.AWSRoleARN", "set one, not both")
		}
		if !c.TLS.enabled() {
			bad("TLS.Enable", "AWS_MSK_IAM needs TLS (MSK's IAM listener is TLS-only)")
		}
	default:
		bad("SASL.Mechanism", "%q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM", c.SASL.Mechanism)
	}
	if len(errs) == 0 && c.TLS.enabled() {
		if _, err := c.tlsConfig(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) rebalance() Rebalance {
	rb := c.Rebalance
	if rb.Strategy == "" {
		rb.Strategy = StrategyCooperativeSticky
	}
	if rb.SessionTimeout == 0 {
		rb.SessionTimeout = 10 * time.Second
	}
	if rb.HeartbeatInterval == 0 {
		rb.HeartbeatInterval = min(time.Second, rb.SessionTimeout/3)
	}
	if rb.Timeout == 0 {
		rb.Timeout = 60 * time.Second
	}
	return rb
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	t := c.TLS
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in for tests
	ca := t.CAPEM
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, invalid("TLS.CAFile", "%v", err)
		}
		ca = b
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, invalid("TLS.CAFile/TLS.CAPEM", "no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	switch {
	case t.CertFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// The error of LoadX509KeyPair names files and formats, never key bytes.
			return nil, invalid("TLS.CertFile/TLS.KeyFile", "%v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case len(t.CertPEM) > 0:
		cert, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
		if err != nil {
			return nil, invalid("TLS.CertPEM/TLS.KeyPEM", "not a matching PEM certificate and key")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// sarama builds the client configuration for a role. c must have been validated.
func (c *Config) sarama(r role) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	if sc.ClientID == "" {
		sc.ClientID = "fleetstream"
	}
	sc.Version = sarama.V2_8_0_0
	if c.Version != "" {
		v, err := sarama.ParseKafkaVersion(c.Version)
		if err != nil {
			return nil, invalid("Version", "%q is not a Kafka version", c.Version)
		}
		sc.Version = v
	}
	sc.Net.DialTimeout = c.DialTimeout
	if sc.Net.DialTimeout == 0 {
		sc.Net.DialTimeout = 10 * time.Second
	}
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	if c.TLS.enabled() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if err := c.saslInto(sc); err != nil {
		return nil, err
	}
	switch r {
	case roleConsumer:
		rb := c.rebalance()
		sc.Consumer.Offsets.AutoCommit.Enable = false
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
		if c.InitialOffset == OffsetNewest {
			sc.Consumer.Offsets.Initial = sarama.OffsetNewest
		}
		sc.Consumer.Return.Errors = true
		sc.Consumer.Group.Session.Timeout = rb.SessionTimeout
		sc.Consumer.Group.Heartbeat.Interval = rb.HeartbeatInterval
		sc.Consumer.Group.Rebalance.Timeout = rb.Timeout
		sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy(rb.Strategy)}
		sc.Consumer.Fetch.Default = c.Fetch.MaxBytes
		if sc.Consumer.Fetch.Default == 0 {
			sc.Consumer.Fetch.Default = defaultFetchBytes
		}
		sc.Consumer.Fetch.MaxBytes = c.Fetch.RequestMaxBytes
		if sc.Consumer.Fetch.MaxBytes == 0 {
			sc.Consumer.Fetch.MaxBytes = max(defaultRequestBytes, sc.Consumer.Fetch.Default)
		}
		sc.Consumer.MaxWaitTime = c.Fetch.MaxWait
		if sc.Consumer.MaxWaitTime == 0 {
			sc.Consumer.MaxWaitTime = 250 * time.Millisecond
		}
		// Fetched records wait in a channel per partition, each pinning the decompressed
		// batch it came from: keep it short.
		sc.ChannelBufferSize = channelBuffer
	case roleProducer:
		sc.Producer.Idempotent = true
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Net.MaxOpenRequests = 1
		sc.Producer.Return.Successes = true
		sc.Producer.Return.Errors = true
		sc.Producer.Retry.Max = 10
		sc.Producer.Retry.Backoff = 250 * time.Millisecond
		sc.Producer.Partitioner = sarama.NewHashPartitioner
		sc.Producer.Flush.Bytes = 1 << 20
		sc.Producer.Flush.Frequency = 5 * time.Millisecond
	}
	return sc, nil
}

// Defaults of the consumer's memory budget (see the package documentation, Memory).
const (
	defaultFetchBytes   = 512 << 10
	defaultRequestBytes = 2 << 20
	channelBuffer       = 128
)

func strategy(name string) sarama.BalanceStrategy {
	switch name {
	case StrategySticky:
		return sarama.NewBalanceStrategySticky()
	case StrategyRange:
		return sarama.NewBalanceStrategyRange()
	case StrategyRoundRobin:
		return sarama.NewBalanceStrategyRoundRobin()
	default:
		return sarama.NewBalanceStrategyCooperativeSticky()
	}
}
