package kafka_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
)

const secret = "s3cr3t-Pa55word"

func validConfig() kafka.Config {
	return kafka.Config{Brokers: []string{"b-1.example:9096"}, Group: "g", Topics: []string{"t"}}
}

func TestConfigInvalid(t *testing.T) {
	codec := kafka.JSON[event]()
	tests := []struct {
		name    string
		mod     func(*kafka.Config)
		setting string
	}{
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, "Brokers"},
		{"broker without port", func(c *kafka.Config) { c.Brokers = []string{"localhost"} }, "Brokers"},
		{"broker port not a number", func(c *kafka.Config) { c.Brokers = []string{"localhost:abc"} }, "Brokers"},
		{"broker port out of range", func(c *kafka.Config) { c.Brokers = []string{"localhost:99999"} }, "Brokers"},
		{"broker without host", func(c *kafka.Config) { c.Brokers = []string{":9092"} }, "Brokers"},
		{"IPv6 broker without brackets", func(c *kafka.Config) { c.Brokers = []string{"::1:9092"} }, "Brokers"},
		{"topic with a space", func(c *kafka.Config) { c.Topics = []string{"cab telemetry"} }, "Topics"},
		{"topic named dot", func(c *kafka.Config) { c.Topics = []string{".."} }, "Topics"},
		{"topic too long", func(c *kafka.Config) { c.Topics = []string{strings.Repeat("t", 250)} }, "Topics"},
		{"no group", func(c *kafka.Config) { c.Group = "" }, "Group"},
		{"no topics", func(c *kafka.Config) { c.Topics = nil }, "Topics"},
		{"duplicate topic", func(c *kafka.Config) { c.Topics = []string{"a", "a"} }, "Topics"},
		{"bad version", func(c *kafka.Config) { c.Version = "latest" }, "Version"},
		{"bad offset", func(c *kafka.Config) { c.InitialOffset = "middle" }, "InitialOffset"},
		{"bad strategy", func(c *kafka.Config) { c.Rebalance.Strategy = "fastest" }, "Rebalance.Strategy"},
		{"heartbeat too slow", func(c *kafka.Config) { c.Rebalance.HeartbeatInterval = 5 * time.Second }, "Rebalance.HeartbeatInterval"},
		{"instance id with a space", func(c *kafka.Config) { c.Rebalance.InstanceID = "pod 0" }, "Rebalance.InstanceID"},
		{"instance id too long", func(c *kafka.Config) { c.Rebalance.InstanceID = strings.Repeat("p", 250) }, "Rebalance.InstanceID"},
		{"instance id \"..\"", func(c *kafka.Config) { c.Rebalance.InstanceID = ".." }, "Rebalance.InstanceID"},
		{"instance id before Kafka 2.3", func(c *kafka.Config) { c.Rebalance.InstanceID, c.Version = "pod-0", "2.2.0" }, "Rebalance.InstanceID"},
		{"scram without password", func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: kafka.SASLSCRAMSHA512, User: "u"} }, "SASL.Password"},
		{"plain without user", func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: kafka.SASLPlain, Password: secret} }, "SASL.User"},
		{"password without mechanism", func(c *kafka.Config) { c.SASL = kafka.SASL{User: "u", Password: secret} }, "SASL.Mechanism"},
		{"unknown mechanism", func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: "GSSAPI", User: "u", Password: secret} }, "SASL.Mechanism"},
		{"iam without region", func(c *kafka.Config) {
			c.SASL = kafka.SASL{Mechanism: kafka.SASLAWSMSKIAM}
			c.TLS.Enable = true
		}, "SASL.AWSRegion"},
		{"iam without tls", func(c *kafka.Config) { c.SASL = kafka.SASL{Mechanism: kafka.SASLAWSMSKIAM, AWSRegion: "eu-west-1"} }, "TLS.Enable"},
		{"cert without key", func(c *kafka.Config) { c.TLS.CertFile = "client.pem" }, "TLS.CertFile/TLS.KeyFile"},
		{"missing CA file", func(c *kafka.Config) { c.TLS.CAFile = "/nonexistent/ca.pem" }, "TLS.CAFile"},
		{"CA not PEM", func(c *kafka.Config) { c.TLS.CAPEM = []byte("nope") }, "TLS.CAFile/TLS.CAPEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mod(&cfg)
			_, err := kafka.NewSource(cfg, codec)
			require.ErrorIs(t, err, kafka.ErrInvalidOption)
			require.Contains(t, err.Error(), tt.setting+":")
			require.NotContains(t, err.Error(), secret)
		})
	}
}

func TestConfigValid(t *testing.T) {
	for _, sasl := range []kafka.SASL{
		{},
		{Mechanism: kafka.SASLPlain, User: "u", Password: secret},
		{Mechanism: kafka.SASLSCRAMSHA256, User: "u", Password: secret},
		{Mechanism: kafka.SASLSCRAMSHA512, User: "u", Password: secret},
		{Mechanism: kafka.SASLAWSMSKIAM, AWSRegion: "eu-west-1", AWSRoleARN: "arn:aws:iam::1:role/r"},
	} {
		cfg := validConfig()
		cfg.SASL = sasl
		cfg.TLS.Enable = sasl.Mechanism != kafka.SASLNone
		_, err := kafka.NewSource(cfg, kafka.JSON[event]())
		require.NoError(t, err, "%s", sasl.Mechanism)
		_, err = kafka.NewProducer[event](kafka.Config{Brokers: cfg.Brokers, SASL: sasl, TLS: cfg.TLS}, "t", kafka.JSONValue[event](nil))
		require.NoError(t, err, "%s", sasl.Mechanism)
	}
}

func TestProducerInvalid(t *testing.T) {
	_, err := kafka.NewProducer[event](kafka.Config{}, "", nil)
	require.ErrorIs(t, err, kafka.ErrInvalidOption)
	for _, s := range []string{"Brokers:", "topic:", "encoder:"} {
		require.Contains(t, err.Error(), s)
	}
}

// TestTopicNamesInvalid: a topic name Kafka refuses (a space, "." or "..", more than 249
// characters) is refused where it is given, with ErrInvalidOption. The Source found out at
// Run, a Producer or a dead-letter output at its first write, a Table at Load.
func TestTopicNamesInvalid(t *testing.T) {
	cfg := kafka.Config{Brokers: validConfig().Brokers}
	enc := kafka.JSONValue[event](nil)
	decode := func(k, v []byte) (string, string, error) { return string(k), string(v), nil }
	for _, topic := range []string{"cab telemetry", ".", "..", "cabs/1", strings.Repeat("t", 250)} {
		t.Run(topic[:min(len(topic), 20)], func(t *testing.T) {
			_, err := kafka.NewProducer(cfg, topic, enc)
			require.ErrorIs(t, err, kafka.ErrInvalidOption, "NewProducer")
			require.ErrorContains(t, err, "topic:")
			_, err = kafka.NewDeadLetterSink(cfg, topic)
			require.ErrorIs(t, err, kafka.ErrInvalidOption, "NewDeadLetterSink")
			_, err = kafka.NewSource(validConfig(), kafka.JSON[event](), kafka.WithDeadLetterTopic(topic))
			require.ErrorIs(t, err, kafka.ErrInvalidOption, "WithDeadLetterTopic")
			require.ErrorContains(t, err, "WithDeadLetterTopic:")
			_, err = kafka.NewTable(cfg, topic, decode)
			require.ErrorIs(t, err, kafka.ErrInvalidOption, "NewTable")
			_, err = kafka.NewTable(cfg, "t", decode, kafka.WithCoPartitioned(topic))
			require.ErrorIs(t, err, kafka.ErrInvalidOption, "WithCoPartitioned")
			require.ErrorContains(t, err, "WithCoPartitioned:")
		})
	}
	for _, topic := range []string{"cab-telemetry", "cabs.v2_1", strings.Repeat("t", 249)} {
		_, err := kafka.NewProducer(cfg, topic, enc)
		require.NoError(t, err, topic)
		_, err = kafka.NewDeadLetterSink(cfg, topic)
		require.NoError(t, err, topic)
		_, err = kafka.NewTable(cfg, topic, decode)
		require.NoError(t, err, topic)
	}
	// A Source's own dead-letter topic, "<topic>.dlq", must be a legal name too, unless the
	// dead letters go elsewhere: it failed at the first bad record.
	long := validConfig()
	long.Topics = []string{strings.Repeat("t", 247)}
	_, err := kafka.NewSource(long, kafka.JSON[event]())
	require.ErrorIs(t, err, kafka.ErrInvalidOption)
	require.ErrorContains(t, err, "WithDeadLetterTopic")
	_, err = kafka.NewSource(long, kafka.JSON[event](), kafka.WithDeadLetterTopic("dlq"))
	require.NoError(t, err)

	valid := validConfig()
	valid.Brokers = []string{"[::1]:9092", "b-2.example:9096", "10.0.0.1:9092"}
	_, err = kafka.NewSource(valid, kafka.JSON[event]())
	require.NoError(t, err, "IPv6 in brackets, names, IPv4")
}

// TestCheckTopic: CheckTopic accepts the names Kafka accepts and says what is wrong with
// the others: the first character Kafka refuses and its position, the length past 249, "."
// or "..". The constructors refuse the same names with the same words (ErrInvalidOption),
// and a group instance id with a character Kafka refuses is named likewise (it was refused
// as "up to 200 characters of ...", naming neither the character nor the length; see
// TestCheckInstanceID).
func TestCheckTopic(t *testing.T) {
	for _, name := range []string{"cab-telemetry", "cabs.v2_1", "-", "...", "A", strings.Repeat("t", 249)} {
		require.NoError(t, kafka.CheckTopic(name), name)
	}
	for name, want := range map[string]string{
		"":                       `kafka: empty topic name`,
		".":                      `kafka: topic name ".": Kafka takes no topic named "." or ".."`,
		"..":                     `kafka: topic name "..": Kafka takes no topic named "." or ".."`,
		"cab telemetry":          `kafka: topic name "cab telemetry": character 4, ' ', is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')`,
		"cabs/1":                 `character 5, '/', is not allowed`,
		"zoné-demand":            `character 4, 'é', is not allowed`,
		"été/x":                  `character 1, 'é', is not allowed`,
		"cab\xff":                `character 4, byte 0xff (not UTF-8), is not allowed`,
		"cabs:1" + "\x00":        `character 5, ':', is not allowed`,
		strings.Repeat("t", 250): `kafka: topic name "` + strings.Repeat("t", 64) + `"...: 250 characters, past Kafka's limit of 249`,
		// A bad character is named first, whatever the length.
		strings.Repeat("t", 300) + "!": `character 301, '!', is not allowed`,
	} {
		err := kafka.CheckTopic(name)
		require.ErrorContains(t, err, want, "%q", name)
		if name == "" {
			continue // the constructors say "empty" in their own words
		}
		_, perr := kafka.NewProducer(kafka.Config{Brokers: validConfig().Brokers}, name, kafka.JSONValue[event](nil))
		require.ErrorIs(t, perr, kafka.ErrInvalidOption)
		require.ErrorContains(t, perr, "topic: "+strings.TrimPrefix(err.Error(), "kafka: "), "NewProducer says what CheckTopic says")
	}
	cfg := validConfig()
	cfg.Rebalance.InstanceID = "pod 0"
	_, err := kafka.NewSource(cfg, kafka.JSON[event]())
	require.ErrorContains(t, err, `Rebalance.InstanceID: group instance id "pod 0": character 4, ' ', is not allowed`)
}

// TestCheckInstanceID: CheckInstanceID accepts the group instance ids Kafka accepts (its
// Topic.validate: a topic name's rules) and says what is wrong with the others in
// CheckTopic's words; NewSource and NewExchange refuse the same ids with the same words
// under Rebalance.InstanceID, the Exchange's for the id with its name after it. Kafka takes
// up to 249 characters: ids of 201 to 249 were refused ("past the limit of 200"), and "."
// and ".." accepted here, to be refused by sarama when the Source ran.
func TestCheckInstanceID(t *testing.T) {
	for _, id := range []string{"pod-0", "fleet.pod_1", "-", "...", strings.Repeat("p", 249)} {
		require.NoError(t, kafka.CheckInstanceID(id), id)
		cfg := validConfig()
		cfg.Rebalance.InstanceID = id
		_, err := kafka.NewSource(cfg, kafka.JSON[event]())
		require.NoError(t, err, "NewSource takes what CheckInstanceID takes: %s", id)
	}
	for id, want := range map[string]string{
		"":                             `kafka: empty group instance id`,
		".":                            `kafka: group instance id ".": Kafka takes no group instance id "." or ".."`,
		"..":                           `kafka: group instance id "..": Kafka takes no group instance id "." or ".."`,
		"pod 0":                        `kafka: group instance id "pod 0": character 4, ' ', is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')`,
		"fleet/0":                      `character 6, '/', is not allowed`,
		"pöd":                          `character 2, 'ö', is not allowed`,
		"pod\xfe":                      `character 4, byte 0xfe (not UTF-8), is not allowed`,
		strings.Repeat("p", 250):       `kafka: group instance id "` + strings.Repeat("p", 64) + `"...: 250 characters, past Kafka's limit of 249`,
		strings.Repeat("p", 300) + ":": `kafka: group instance id "` + strings.Repeat("p", 64) + `"... (301 characters): character 301, ':', is not allowed`,
	} {
		err := kafka.CheckInstanceID(id)
		require.ErrorContains(t, err, want, "%q", id)
		if id == "" {
			continue // Config's "" is a dynamic member
		}
		cfg := validConfig()
		cfg.Rebalance.InstanceID = id
		_, serr := kafka.NewSource(cfg, kafka.JSON[event]())
		require.ErrorIs(t, serr, kafka.ErrInvalidOption)
		require.ErrorContains(t, serr, "Rebalance.InstanceID: "+strings.TrimPrefix(err.Error(), "kafka: "), "NewSource says what CheckInstanceID says")
	}
	// An Exchange's member joins with id.name: 245 characters and ".bykey" are 251.
	cfg := validConfig()
	cfg.Rebalance.InstanceID = strings.Repeat("p", 245)
	_, err := kafka.NewSource(cfg, kafka.JSON[event]())
	require.NoError(t, err)
	_, err = kafka.NewExchange(cfg, "p", "bykey", stream.StringCodec{})
	require.ErrorIs(t, err, kafka.ErrInvalidOption)
	require.ErrorContains(t, err, `Rebalance.InstanceID: group instance id "`+strings.Repeat("p", 64)+`"...: 251 characters, past Kafka's limit of 249`)
	require.ErrorContains(t, kafka.CheckInstanceID(cfg.Rebalance.InstanceID+".bykey"), "251 characters")
}

// TestCheckTopicLongName: a name past Kafka's limit is quoted by its first 64 bytes (never
// half a character) with its length, so that a mistaken 10,000-character flag value makes an
// error line of a hundred-odd bytes, not of 10 KB; the constructors say the same. The whole
// name was quoted.
func TestCheckTopicLongName(t *testing.T) {
	long := strings.Repeat("t", 10_000)
	for name, tc := range map[string]struct {
		name, want string
	}{
		"too long": {long, `kafka: topic name "` + strings.Repeat("t", 64) + `"...: 10000 characters, past Kafka's limit of 249`},
		"too long, a bad character last": {long + "!",
			`kafka: topic name "` + strings.Repeat("t", 64) + `"... (10001 characters): character 10001, '!', is not allowed`},
		// 'é' is two bytes: 64 bytes would cut the 32nd in two.
		"multi-byte": {"x" + strings.Repeat("é", 5_000),
			`kafka: topic name "x` + strings.Repeat("é", 31) + `"... (5001 characters): character 2, 'é', is not allowed`},
		"not UTF-8":           {strings.Repeat("\xff", 300), `kafka: topic name "` + strings.Repeat(`\xff`, 64) + `"... (300 characters): character 1, byte 0xff (not UTF-8)`},
		"at the limit, whole": {strings.Repeat("t", 248) + "/", `kafka: topic name "` + strings.Repeat("t", 248) + `/": character 249, '/'`},
	} {
		t.Run(name, func(t *testing.T) {
			err := kafka.CheckTopic(tc.name)
			require.ErrorContains(t, err, tc.want)
			require.Less(t, len(err.Error()), 600, "the error quotes the whole name")
			_, perr := kafka.NewProducer(kafka.Config{Brokers: validConfig().Brokers}, tc.name, kafka.JSONValue[event](nil))
			require.ErrorIs(t, perr, kafka.ErrInvalidOption)
			require.ErrorContains(t, perr, "topic: "+strings.TrimPrefix(err.Error(), "kafka: "), "NewProducer says what CheckTopic says")
			require.Less(t, len(perr.Error()), 700)
		})
	}
}

// TestBoundedAndCaughtUpRefused: WithBounded ends a Source's input alone at the end offsets
// of its start, WithEndWhenCaughtUp ends the inputs of all its Sources together once they
// are read to their high-water marks and idle. Both on one Source were accepted, and a
// bounded Source, which reads nothing past its start's ends, never counted as caught up
// when records came later: the option's other Sources waited for ever. The pair is refused
// at construction, whichever comes first; either alone is accepted.
func TestBoundedAndCaughtUpRefused(t *testing.T) {
	for name, opts := range map[string][]kafka.SourceOption{
		"bounded first":   {kafka.WithBounded(), kafka.WithEndWhenCaughtUp(time.Second)},
		"caught-up first": {kafka.WithEndWhenCaughtUp(time.Second), kafka.WithBounded()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kafka.NewSource(validConfig(), kafka.JSON[event](), opts...)
			require.ErrorIs(t, err, kafka.ErrInvalidOption)
			require.ErrorContains(t, err, "WithBounded/WithEndWhenCaughtUp")
		})
	}
	_, err := kafka.NewSource(validConfig(), kafka.JSON[event](), kafka.WithBounded())
	require.NoError(t, err)
	_, err = kafka.NewSource(validConfig(), kafka.JSON[event](), kafka.WithEndWhenCaughtUp(time.Second))
	require.NoError(t, err)
}

// TestProducerExactlyOnceSaramaConfig: an exactly-once Producer's messages go through the
// transaction of the Source it binds to, whose client has the Source's sarama settings. A
// WithSaramaConfig given to the Producer was accepted and did nothing; it is refused, with a
// message that says where it belongs.
func TestProducerExactlyOnceSaramaConfig(t *testing.T) {
	src, err := kafka.NewSource(validConfig(), kafka.JSON[event]())
	require.NoError(t, err)
	tune := kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Producer.Compression = sarama.CompressionZSTD })
	_, err = kafka.NewProducer(kafka.Config{Brokers: []string{"b-1.example:9096"}}, "out", kafka.JSONValue[event](nil), kafka.WithExactlyOnce(src), tune)
	require.ErrorIs(t, err, kafka.ErrInvalidOption)
	require.ErrorContains(t, err, "WithSaramaConfig")
	require.ErrorContains(t, err, "give the option to that one")
	_, err = kafka.NewProducer(kafka.Config{Brokers: []string{"b-1.example:9096"}}, "out", kafka.JSONValue[event](nil), kafka.WithExactlyOnce(src))
	require.NoError(t, err, "without it")
	_, err = kafka.NewProducer(kafka.Config{Brokers: []string{"b-1.example:9096"}}, "out", kafka.JSONValue[event](nil), tune)
	require.NoError(t, err, "without exactly once")
}

func TestConfigRedactsSecrets(t *testing.T) {
	cfg := validConfig()
	cfg.SASL = kafka.SASL{Mechanism: kafka.SASLSCRAMSHA512, User: "fleet", Password: secret}
	cfg.TLS = kafka.TLS{CertPEM: []byte("cert"), KeyPEM: []byte("-----BEGIN PRIVATE KEY----- " + secret)}
	for _, s := range []string{
		cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		fmt.Sprintf("%v %+v %#v", cfg.SASL, cfg.SASL, cfg.SASL), fmt.Sprintf("%v %#v", cfg.TLS, cfg.TLS),
	} {
		require.NotContains(t, s, secret)
		require.NotContains(t, s, "PRIVATE KEY")
	}
	require.Contains(t, cfg.String(), "fleet")
	require.Contains(t, cfg.String(), "[redacted]")

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("config", "cfg", cfg, "sasl", cfg.SASL)
	log.Info("config", "cfg", &cfg)
	require.NotContains(t, buf.String(), secret)
	require.True(t, strings.Contains(buf.String(), "SCRAM-SHA-512"), buf.String())
}

// TestNilOptions: a nil option (one left unset in a conditional list, say) is refused with
// ErrInvalidOption, as NewTable refused it. The other constructors called its method and
// panicked; NewDeadLetterSink also dropped its options' own errors.
func TestNilOptions(t *testing.T) {
	var nilCaughtUp *kafka.CaughtUp
	src, err := kafka.NewSource(validConfig(), kafka.JSON[event]())
	require.NoError(t, err)
	prodCfg := kafka.Config{Brokers: validConfig().Brokers}
	enc := kafka.JSONValue[event](nil)
	for name, construct := range map[string]func() error{
		"NewSource": func() error {
			_, err := kafka.NewSource(validConfig(), kafka.JSON[event](), nil)
			return err
		},
		"NewSource, nil CaughtUp": func() error {
			_, err := kafka.NewSource(validConfig(), kafka.JSON[event](), nilCaughtUp)
			return err
		},
		"NewProducer": func() error {
			_, err := kafka.NewProducer(prodCfg, "out", enc, nil)
			return err
		},
		"NewExchange": func() error {
			_, err := kafka.NewExchange(validConfig(), "p", "x", stream.JSONCodec[event](), nil)
			return err
		},
		"NewDeadLetterSink": func() error {
			_, err := kafka.NewDeadLetterSink(prodCfg, "dlq", nil)
			return err
		},
		"NewDeadLetterSink, bad option": func() error {
			_, err := kafka.NewDeadLetterSink(prodCfg, "dlq", kafka.WithExactlyOnce(nil))
			return err
		},
		"NewDeadLetterSink, exactly once": func() error {
			_, err := kafka.NewDeadLetterSink(prodCfg, "dlq", kafka.WithExactlyOnce(src))
			return err
		},
		"NewTable": func() error {
			_, err := kafka.NewTable(prodCfg, "t", func(k, v []byte) (string, string, error) { return string(k), string(v), nil }, nil)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = construct() })
			require.ErrorIs(t, err, kafka.ErrInvalidOption)
		})
	}
}
