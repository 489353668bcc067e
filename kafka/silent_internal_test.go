package kafka

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// scaleDown shortens sc's read timeout to 100 ms and its metadata timeout in proportion, so
// that a start against a silent broker takes what it would with the defaults, divided by 300.
func scaleDown(sc *sarama.Config) {
	sc.Metadata.Timeout = sc.Metadata.Timeout * 100 * time.Millisecond / sc.Net.ReadTimeout
	sc.Net.ReadTimeout = 100 * time.Millisecond
}

// TestSilentBrokerStart: the admin and metadata requests of a start (ensureTopic, which
// EnsureTopic, EnsureCompactedTopic and Exchange.Open run; the metadata of NewSource's Run
// and of Exchange.Open) against a broker that accepts connections and never answers fail
// within a bound (the client's Metadata.Timeout: three of sarama's 30 s read timeouts per seed
// broker, which each attempt waits out), with an error that names the broker and says it did
// not answer. They used to wait out every metadata retry (Metadata.Retry.Max, 10) of three
// read timeouts each, about 16 minutes, and then said only "run out of available brokers:
// i/o timeout". A context that ends stops the wait at once.
func TestSilentBrokerStart(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		for _, r := range []role{roleConsumer, roleProducer} {
			sc, err := (&Config{Brokers: []string{"b:9092"}}).sarama(r)
			require.NoError(t, err)
			require.Equal(t, 90*time.Second, sc.Metadata.Timeout, "a metadata refresh is bounded: one attempt of three reads")
			sc, err = (&Config{Brokers: []string{"a:9092", "b:9092", "c:9092"}}).sarama(r)
			require.NoError(t, err)
			require.Equal(t, 270*time.Second, sc.Metadata.Timeout, "one attempt of each seed broker")
		}
	})
	// Scaled down by 300, the bound is 300 ms: the first attempt's three reads (300 ms) reach
	// it, and the retries are skipped. Unbounded, the attempts took 10 s.
	const bound = 3 * time.Second
	requireSilent := func(t *testing.T, addr string, err error, took time.Duration) {
		t.Helper()
		t.Logf("after %v: %v", took.Round(time.Millisecond), err)
		require.Error(t, err)
		require.Less(t, took, bound, "the metadata retries were waited out")
		require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
		require.ErrorContains(t, err, "broker "+addr+" accepted the connection but did not answer")
	}

	t.Run("ensureTopic", func(t *testing.T) {
		addr, _ := testenv.SilentListener(t)
		cfg := Config{Brokers: []string{addr}}
		sc, err := cfg.sarama(roleProducer)
		require.NoError(t, err)
		scaleDown(sc)
		start := time.Now()
		_, _, err = ensureTopic(&cfg, sc, "t", 1, 1, nil)
		requireSilent(t, addr, err, time.Since(start))
	})

	t.Run("Source", func(t *testing.T) {
		addr, _ := testenv.SilentListener(t)
		src, err := NewSource(Config{Brokers: []string{addr}, Group: "g", Topics: []string{"t"}}, JSON[int](), WithSaramaConfig(scaleDown))
		require.NoError(t, err)
		p, err := stream.New(time.Second)
		require.NoError(t, err)
		stream.To(stream.From(p, src), stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
		start := time.Now()
		err = p.Run(t.Context())
		requireSilent(t, addr, err, time.Since(start))
	})

	t.Run("Exchange", func(t *testing.T) {
		addr, _ := testenv.SilentListener(t)
		ex, err := NewExchange(Config{Brokers: []string{addr}, Group: "g", Topics: []string{"t"}}, "p", "x", stream.JSONCodec[int](),
			WithSaramaConfig(scaleDown))
		require.NoError(t, err)
		start := time.Now()
		_, err = ex.Open(t.Context())
		requireSilent(t, addr, err, time.Since(start))
	})

	t.Run("context", func(t *testing.T) {
		// With the defaults, the wait is long: the context ends it.
		addr, _ := testenv.SilentListener(t)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := EnsureTopic(ctx, Config{Brokers: []string{addr}}, "t", 1, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second)
	})
}

// TestUnanswered: connectError says which brokers timed out, and how: connected to but
// silent, or not connected to.
func TestUnanswered(t *testing.T) {
	timeout := func(op string) error {
		return &net.OpError{Op: op, Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9092}, Err: os.ErrDeadlineExceeded}
	}
	silent := &net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 9092}, Err: os.ErrDeadlineExceeded}
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 3), Port: 9092}, Err: syscall.ECONNREFUSED}
	err := connectError(&Config{Brokers: []string{"a:9092"}}, sarama.Wrap(sarama.ErrOutOfBrokers, timeout("dial"), silent, refused, silent))
	require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
	require.Equal(t, 1, strings.Count(err.Error(), "broker 10.0.0.2:9092 accepted the connection but did not answer"), err.Error())
	require.ErrorContains(t, err, "broker 10.0.0.1:9092 could not be connected to within the dial timeout")
	require.NotContains(t, err.Error(), "broker 10.0.0.3:9092", "a refused connection is not a timeout")

	require.Empty(t, unanswered(sarama.Wrap(sarama.ErrOutOfBrokers, refused)))
	require.Empty(t, unanswered(nil))
}

// TestSilentBrokerPassedOver: a client whose seed brokers are a hung one and one that answers
// tries the hung one first half of the time (sarama shuffles its seeds); it moves on to the
// other and the start succeeds. With a metadata timeout of 60 s, shorter than the hung
// broker's three read timeouts, no further broker was tried: ensureTopic failed whenever the
// hung one came first.
//
// The scaled-down read timeout (100 ms) is the real broker's too: a start that failed because
// the real broker took longer to create the topic (a CI run under load: "read tcp
// ...->127.0.0.1:19092: i/o timeout" at the first start) is tried again, up to three times.
// The failure this test is about names the hung broker, not the real one. So is a start that
// failed with "correlation ID didn't match" (cicheck95): the real broker's late answer to a
// request that timed out, read as the answer to the next.
func TestSilentBrokerPassedOver(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	addr, _ := testenv.SilentListener(t)
	realSlow := "->" + brokers[0] + ": i/o timeout"
	// The real broker's answer to a request that timed out, read as the next one's: only the
	// real broker answers, so it was slow.
	const lateAnswer = "correlation ID didn't match"
	for i := range 8 {
		var err error
		for try := 0; try < 3; try++ {
			cfg := Config{Brokers: []string{addr, brokers[0]}}
			sc, serr := cfg.sarama(roleProducer)
			require.NoError(t, serr)
			scaleDown(sc)
			topic := testenv.UniqueName(t, "silent-among")
			_, _, err = ensureTopic(&cfg, sc, topic, 1, 1, nil)
			if err == nil || !strings.Contains(err.Error(), realSlow) && !strings.Contains(err.Error(), lateAnswer) {
				break
			}
			t.Logf("start %d: the real broker did not answer within 100 ms, trying again: %v", i, err)
		}
		require.NoError(t, err, "start %d", i)
	}
}
