// Config, the connection and consumer group settings shared by Source, Producer and
// DeadLetterSink, with its redacted String; its validation and its translation into a sarama
// config are in config_sarama.go.

package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
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
	// InitialOffset is where a Source starts a topic its group has no committed offset for.
	// Default OffsetOldest. With OffsetNewest the Source commits the ends of such a topic's
	// partitions before it joins the group, so it reads what is written from then on; a
	// partition added to the topic later, while the job runs or while it is stopped, starts
	// at its start, as in Flink's Kafka source (sarama's newest would skip what was written
	// to it before the rebalance that assigns it).
	InitialOffset Offset

	// Rebalance tunes the consumer group protocol.
	Rebalance Rebalance
	// Fetch tunes fetching.
	Fetch Fetch

	// DialTimeout bounds connecting to a broker. Default 10s. A broker that takes the
	// connection and never answers waits out sarama's Net.ReadTimeout (30s) three times per
	// attempt; the client's metadata retries stop after 60s or three read timeouts per seed
	// broker, whichever is longer (Metadata.Timeout), so a start against such a broker fails
	// in about 90s, with an error that names it (or sooner, when the start's context ends),
	// and one among brokers that answer is passed over.
	DialTimeout time.Duration
	// MetadataRefresh is how often a Source's client refreshes the metadata of its topics
	// (only those), and how often the group's leader looks for partitions added to them
	// (Kafka's metadata.max.age.ms, Flink's partition discovery interval): a partition added
	// while the pipeline runs is assigned at the rebalance that follows, within about twice
	// this, and read from its start (with InitialOffset OffsetNewest too). Default 5s. Negative: no refresh in the background, so an added partition
	// is read only after the group's next rebalance. Producers ignore it.
	MetadataRefresh time.Duration

	TLS  TLS
	SASL SASL
}

// Rebalance tunes the consumer group protocol.
type Rebalance struct {
	// Strategy is StrategyCooperativeSticky (default), StrategySticky, StrategyRange or
	// StrategyRoundRobin. Every member of a group must use the same one: the group's
	// coordinator refuses a member of another strategy while the group has members of its
	// own (INCONSISTENT_GROUP_PROTOCOL). Such a Source consumes nothing and tries again with
	// backoff until they leave, warning with an error that names this setting (also in
	// SourceStats.LastError), as a change of strategy goes through once the last member of
	// the old one left (a static or crashed member stays until its SessionTimeout).
	Strategy string
	// SessionTimeout is how long the coordinator waits for heartbeats before it removes a
	// member (a crashed instance's partitions move after this). Default 10s. The brokers
	// bound it (group.min.session.timeout.ms and group.max.session.timeout.ms, 6s and 30m by
	// default): a Source whose join they refuse for it stops, Run returning an error that
	// wraps ErrInvalidOption.
	SessionTimeout time.Duration
	// HeartbeatInterval is the heartbeat period. Default 250ms (Kafka's Java clients use
	// 3s); at most SessionTimeout/3. A rebalance waits for every member's next heartbeat: a
	// pipeline's repartitions and its input join one group one after the other at start, and
	// each join waits that long (with 1s, the fleet job's input was assigned its partitions
	// 1.1 s after its repartition's in three starts of four; with 250ms, 0.3-0.4 s). A
	// heartbeat is a small request to the group's coordinator: four a second per member.
	HeartbeatInterval time.Duration
	// Timeout is how long a member may take to give up revoked partitions, including the
	// commit of the batch in flight. Default 60s. A member that joins the group meanwhile
	// waits for the coordinator's answer until every member has rejoined, but reads it only
	// within sarama's Net.ReadTimeout (30s): past that its join fails, the Source logs a
	// warning (SourceStats says it is failing until its session starts) and joins again,
	// keeping its place in the rebalance. See the consumer settings in config_sarama.go for
	// why the read timeout is not raised above this one.
	Timeout time.Duration
	// InstanceID, if set, makes the member static (KIP-345, Kafka's group.instance.id;
	// brokers of Kafka 2.3 or later): a member that leaves, stops or restarts keeps its
	// partitions until SessionTimeout passes without it, and an instance back within that
	// time takes them again with no rebalance, so a rolling restart moves no partition and
	// replays nothing but each restarted instance's own. Give every instance an id of its
	// own that it keeps across restarts (a StatefulSet pod's name, a host name), up to 249
	// characters of [a-zA-Z0-9._-], not "." or "..", as Kafka takes (CheckInstanceID, which
	// a program can call on an id before it connects), and raise SessionTimeout above the
	// time a restart takes: meanwhile the instance's partitions are read by no one. An
	// Exchange's consumer, another member of the group, joins with the id and its own name
	// after it (id.name, held to the same rules). Two
	// processes with one id cannot both be members: the one that joins last fences the other,
	// which stops with ErrFencedInstance.
	InstanceID string
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
	// MaxWait is how long the broker may wait to fill MinBytes. Default 250ms; 50ms for a
	// Source given WithBounded, and for an Exchange's consumer.
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
	fmt.Fprintf(&b, "kafka.Config{Brokers:%v ClientID:%q Version:%q Group:%q Topics:%v InitialOffset:%q Rebalance:%+v Fetch:%+v DialTimeout:%v MetadataRefresh:%v TLS:%v SASL:%v}",
		c.Brokers, c.ClientID, c.Version, c.Group, c.Topics, c.InitialOffset, c.Rebalance, c.Fetch, c.DialTimeout, c.MetadataRefresh, c.TLS, c.SASL)
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
