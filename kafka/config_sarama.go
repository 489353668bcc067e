// How a Config is checked and turned into a sarama config for each role: validate, the
// rebalance defaults, the TLS config and the sarama settings (config.go holds the types).

package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

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
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || host == "" || strings.TrimSpace(b) != b {
			bad("Brokers", "%q is not host:port (a port 1 to 65535; an IPv6 address in brackets)", b)
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
			} else if err := topicName("Topics", t); err != nil {
				errs = append(errs, err)
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
		if id := rb.InstanceID; id != "" { // "": a dynamic member
			if err := instanceIDError(id); err != nil {
				bad("Rebalance.InstanceID", "%v", err)
			}
		}
		if v, err := sarama.ParseKafkaVersion(c.Version); rb.InstanceID != "" && c.Version != "" && err == nil && !v.IsAtLeast(sarama.V2_3_0_0) {
			// sarama would leave the id out and the members dynamic, silently.
			bad("Rebalance.InstanceID", "static membership needs Kafka 2.3 or later; Version is %s", c.Version)
		}
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
		rb.HeartbeatInterval = min(250*time.Millisecond, rb.SessionTimeout/3)
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
	// sarama's per-request metrics, which nothing reads, are not recorded (noMetrics);
	// WithSaramaConfig may set a registry of the program's own.
	sc.MetricRegistry = noMetrics{}
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
	// The retries ride out brokers that refuse connections (a restart) in a few seconds; a
	// broker that accepts connections and never answers (hung, or a load balancer with
	// nothing behind it) costs three read timeouts (Net.ReadTimeout, 30s) per attempt, so
	// that a start against it failed only after about 16 minutes. No retry starts past
	// Metadata.Timeout (as the Java client's default.api.timeout.ms): such a start fails in
	// about 90s (see connectError). sarama tries no further broker past it either, so it
	// leaves each seed broker one attempt: a hung broker among answering ones is passed over.
	sc.Metadata.Timeout = metadataTimeout(len(c.Brokers), sc.Net.ReadTimeout)
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
		// The group's leader compares the topics' partition counts at this period, with
		// metadata refreshed as often: only of the topics in use (not Full), so that the short
		// period stays cheap on a cluster of many topics.
		sc.Metadata.Full = false
		sc.Metadata.RefreshFrequency = c.MetadataRefresh
		switch {
		case c.MetadataRefresh == 0:
			sc.Metadata.RefreshFrequency = defaultMetadataRefresh
		case c.MetadataRefresh < 0:
			sc.Metadata.RefreshFrequency = 0 // sarama: no background refresh
		}
		rb := c.rebalance()
		sc.Consumer.Offsets.AutoCommit.Enable = false
		// Every partition without a commit starts at its start, even with InitialOffset
		// OffsetNewest: the Source commits the ends of the topics new to the group before it
		// joins (startAtEnds), so a partition without a commit is one added later.
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
		sc.Consumer.Return.Errors = true
		sc.Consumer.Group.Session.Timeout = rb.SessionTimeout
		sc.Consumer.Group.Heartbeat.Interval = rb.HeartbeatInterval
		sc.Consumer.Group.Rebalance.Timeout = rb.Timeout
		// Net.ReadTimeout stays at 30s, below the rebalance timeout, although a JoinGroup
		// may wait for the slowest member's revocation up to that (Java's consumer gives its
		// join the rebalance timeout + 5s). sarama has one read timeout per client, not per
		// request, and the group's client carries everything else too: the consumer group
		// fetches through it (newConsumer(client)), and its coordinator is the client's
		// *Broker of that id, whose one connection also carries the fetches from the
		// partitions it leads, besides the heartbeats, offset fetches and commits. A read
		// timeout above the rebalance timeout would make a hung leader or coordinator take
		// over a minute to notice in place of 30s (and a metadata refresh against a hung
		// broker three of them, metadataTimeout). A join that timed out is sent again after
		// Run's backoff (a quarter of a second the first time), with the member id it had:
		// the coordinator answers that one.
		sc.Consumer.Group.InstanceId = rb.InstanceID
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
		sc.Producer.Flush.Frequency = producerLinger
	}
	return sc, nil
}

// checkFlush refuses a producer configuration (after the user's WithSaramaConfig) that would
// hold a lone message for ever: sarama sends on its byte or message trigger only when
// Flush.Frequency is zero and either trigger is set, so a write smaller than the trigger
// never went out and its batch's output waited without a word.
func checkFlush(sc *sarama.Config) error {
	if f := &sc.Producer.Flush; holdsLoneWrite(sc) {
		return stream.Permanent(invalid("WithSaramaConfig", "Producer.Flush.Frequency 0 with Flush.Bytes %d and Flush.Messages %d: "+
			"sarama would hold a write below those until more came; set a frequency, or set all three to 0 to send each write at once",
			f.Bytes, f.Messages))
	}
	return nil
}

// holdsLoneWrite reports whether sc's flush settings make sarama hold a write smaller than
// its byte or message trigger until more come: a trigger set and no frequency.
func holdsLoneWrite(sc *sarama.Config) bool {
	f := &sc.Producer.Flush
	return f.Frequency == 0 && (f.Bytes > 0 || f.Messages > 0)
}

// producerLinger is how long a producer gathers messages before it sends them (sarama's
// Producer.Flush.Frequency), unless a megabyte gathered first. Not the dead-letter producer's
// (NewDeadLetterSink): a claim waits for each of its writes.
const producerLinger = 5 * time.Millisecond

// Defaults of the consumer's memory budget (see the package documentation, Memory).
const (
	defaultFetchBytes   = 512 << 10
	defaultRequestBytes = 2 << 20
	channelBuffer       = 128
)

// metadataTimeout bounds a metadata refresh with its retries (sarama's Metadata.Timeout) for
// a client of brokers seed brokers with that read timeout: 60s, or longer if that is needed
// to try each seed broker once when each takes the connection and never answers (three
// reads: two ApiVersions requests, then the metadata). With the shorter bound, a start whose
// client tried a hung broker first failed after its 90s without trying the next one.
func metadataTimeout(brokers int, read time.Duration) time.Duration {
	return max(60*time.Second, time.Duration(max(brokers, 1))*3*read)
}

// defaultMetadataRefresh is Config.MetadataRefresh's default: partitions added to a topic are
// read within seconds, as Spark's Kafka source (which looks at every batch) would.
const defaultMetadataRefresh = 5 * time.Second

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
