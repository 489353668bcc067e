package kafka

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestBoundedFetchWait: a bounded Source's consumer waits 50ms for a fetch to fill unless the
// Config says otherwise (its end no longer waits a quarter of a second behind a fetch for
// records that will not come); an unbounded one 250ms, and what the Config says wins for both.
func TestBoundedFetchWait(t *testing.T) {
	codec := CodecFunc[int](func(*Message) (int, time.Time, error) { return 0, time.Time{}, nil })
	for _, tc := range []struct {
		name    string
		bounded bool
		wait    time.Duration
		want    time.Duration
	}{
		{"bounded", true, 0, boundedFetchWait},
		{"bounded, the config's wait", true, 300 * time.Millisecond, 300 * time.Millisecond},
		{"unbounded", false, 0, 250 * time.Millisecond},
		{"unbounded, the config's wait", false, 40 * time.Millisecond, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"in"}, Group: "g"}
			cfg.Fetch.MaxWait = tc.wait
			var opts []SourceOption
			if tc.bounded {
				opts = append(opts, WithBounded())
			}
			s, err := NewSource(cfg, Codec[int](codec), opts...)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := s.cfg.sarama(roleConsumer)
			if err != nil {
				t.Fatal(err)
			}
			s.consumerOptions(sc)
			if sc.Consumer.MaxWaitTime != tc.want {
				t.Fatalf("Consumer.MaxWaitTime = %v, want %v", sc.Consumer.MaxWaitTime, tc.want)
			}
			if sc.Consumer.IsolationLevel != sarama.ReadUncommitted {
				t.Fatalf("isolation %v without exactly once or WithReadCommitted", sc.Consumer.IsolationLevel)
			}
		})
	}
}
