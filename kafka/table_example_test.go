package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
)

// Enrich cab telemetry with the cab's driver as of each event: the drivers come from the
// compacted topic "cab-drivers" (key: cab id; value: JSON; a tombstone when a cab leaves
// the fleet).
func ExampleNewTable() {
	ctx := context.Background()
	cfg := kafka.Config{Brokers: []string{"localhost:9092"}, Group: "cab-enrich", Topics: []string{"cab-telemetry"}}
	type driverInfo struct {
		Name    string `json:"name"`
		License string `json:"license"`
	}
	if _, err := kafka.EnsureCompactedTopic(ctx, cfg, "cab-drivers", 6, 3); err != nil {
		fmt.Println(err)
		return
	}
	drivers, err := kafka.NewTable(cfg, "cab-drivers", func(key, value []byte) (string, driverInfo, error) {
		var d driverInfo
		if value == nil { // a tombstone: only the key counts
			return string(key), d, nil
		}
		err := json.Unmarshal(value, &d)
		return string(key), d, err
	}, kafka.WithVersions(16))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drivers.Close()
	loadCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := drivers.Load(loadCtx); err != nil { // up to the end offsets of now
		fmt.Println(err)
		return
	}

	type reading struct {
		CabID string    `json:"cab_id"`
		TS    time.Time `json:"ts"`
	}
	type enriched struct {
		reading
		Driver string `json:"driver,omitempty"`
	}
	src, err := kafka.NewSource(cfg, kafka.CodecFunc[reading](func(m *kafka.Message) (reading, time.Time, error) {
		r, _, err := kafka.JSON[reading]().Decode(m)
		return r, r.TS, err
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := stream.New(time.Second)
	withDriver, err := join.Enrich(stream.From(p, src), drivers, func(r reading) string { return r.CabID },
		func(r reading, d driverInfo, ok bool) enriched { return enriched{reading: r, Driver: d.Name} })
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = withDriver // stream.To(withDriver, sink); p.Run(ctx)
}

// A registry of cabs too large to replicate in every instance: each instance holds only the
// partitions of "cab-registry" that match the partitions of "cab-telemetry" it owns. Both
// topics are written keyed by cab id with the Producer (or any sarama producer with the
// default hash partitioner) and have as many partitions; Load checks the counts.
func ExampleWithCoPartitioned() {
	ctx := context.Background()
	cfg := kafka.Config{Brokers: []string{"localhost:9092"}, Group: "cab-enrich", Topics: []string{"cab-telemetry"}}
	type cabInfo struct {
		Fleet string `json:"fleet"`
	}
	registry, err := kafka.NewTable(cfg, "cab-registry", func(key, value []byte) (string, cabInfo, error) {
		var c cabInfo
		if value == nil {
			return string(key), c, nil
		}
		err := json.Unmarshal(value, &c)
		return string(key), c, err
	}, kafka.WithCoPartitioned("cab-telemetry"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer registry.Close()
	if err := registry.Load(ctx); err != nil { // checks; errors.Is(err, kafka.ErrNotCoPartitioned) names the fix
		fmt.Println(err)
		return
	}

	type reading struct {
		CabID string    `json:"cab_id"`
		TS    time.Time `json:"ts"`
	}
	src, err := kafka.NewSource(cfg, kafka.CodecFunc[reading](func(m *kafka.Message) (reading, time.Time, error) {
		r, _, err := kafka.JSON[reading]().Decode(m)
		return r, r.TS, err
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := stream.New(time.Second)
	// Each stream partition's registry partition is loaded before its first record is
	// enriched, and released when the partition is revoked.
	withFleet, err := join.EnrichCoPartitioned(stream.From(p, src), registry, func(r reading) string { return r.CabID },
		func(r reading, c cabInfo, ok bool) string { return r.CabID + " " + c.Fleet })
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = withFleet // stream.To(withFleet, sink); p.Run(ctx)

	// A stream keyed otherwise, or with another partition count, is repartitioned first into
	// the registry's partitioning:
	//
	//	ex, _ := kafka.NewExchange(cfg, "cab-enrich", "by-cab", codec, kafka.WithPartitions(registry.PartitionCount()))
	//	byCab := stream.RepartitionBy(keyed, "by-cab", ex, func(p stream.Pair[string, reading]) uint64 { return kafka.KeyHash(p.Key) })
}
