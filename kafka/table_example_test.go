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
