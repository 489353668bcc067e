package kafka

import (
	"testing"
	"time"
)

// TestMetadataRefresh: a consumer refreshes the metadata of its own topics only, every 5s by
// default (the period at which the group's leader looks for added partitions), at the
// configured period, or never with a negative one; producers keep sarama's defaults.
func TestMetadataRefresh(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{{0, 5 * time.Second}, {750 * time.Millisecond, 750 * time.Millisecond}, {-1, 0}} {
		c := Config{Brokers: []string{"b:9092"}, Group: "g", Topics: []string{"t"}, MetadataRefresh: tc.set}
		sc, err := c.sarama(roleConsumer)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("MetadataRefresh %v: sarama rejects the config: %v", tc.set, err)
		}
		if sc.Metadata.RefreshFrequency != tc.want || sc.Metadata.Full {
			t.Fatalf("MetadataRefresh %v: sarama refreshes every %v (want %v), full %v (want false)",
				tc.set, sc.Metadata.RefreshFrequency, tc.want, sc.Metadata.Full)
		}
	}
	c := Config{Brokers: []string{"b:9092"}, MetadataRefresh: time.Second}
	sc, err := c.sarama(roleProducer)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Metadata.RefreshFrequency != 10*time.Minute || !sc.Metadata.Full {
		t.Fatalf("producer: refresh %v, full %v: want sarama's defaults", sc.Metadata.RefreshFrequency, sc.Metadata.Full)
	}
}
