// Command speeding writes each cab's top speed above a limit per event-time minute to OpenSearch.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetstream/fleetstream/examples/internal/cli"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

func main() {
	kf := cli.KafkaFlags(flag.CommandLine)
	of := cli.OpenSearchFlags(flag.CommandLine, kf)
	limit := flag.Float64("limit", 120, "speed limit, km/h")
	topic := flag.String("topic", "cab-telemetry", "telemetry topic")
	group := flag.String("group", "speeding", "consumer group")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // the first Ctrl-C stops gracefully, a second one at once
	// The library's warnings (an outage, dead letters) go to the logger each part is given.
	logger := slog.Default()
	// The stop (the batch in flight, its commit) takes at most 20 s: then Run fails, and the
	// next run reads again what was not committed.
	p, err := stream.New(time.Second, stream.WithName("speeding"), stream.WithMaxOutOfOrderness(10*time.Second),
		stream.WithShutdownTimeout(20*time.Second), stream.WithLogger(logger))
	check(err)
	kcfg := kf.Config()
	kcfg.Group, kcfg.Topics = *group, []string{*topic}
	src, err := kafka.NewSource(kcfg, kafka.CodecFunc[telemetry.Event](func(m *kafka.Message) (telemetry.Event, time.Time, error) {
		e, err := telemetry.Decode(m.Value)
		return e, e.Time, err // bad records go to <topic>.dlq
	}), kafka.WithLogger(logger))
	check(err)
	fast := stream.From(p, src).Filter(func(e telemetry.Event) bool { return e.SpeedKmh > *limit })
	w, err := window.Aggregate(fast, func(e telemetry.Event) string { return e.CabID },
		func(e telemetry.Event) float64 { return e.SpeedKmh }, window.Tumbling(time.Minute), window.Max[float64]())
	check(err)
	ocfg, err := of.Config()
	check(err)
	ocfg.Logger = logger
	client, err := opensearch.NewClient(ctx, ocfg)
	check(err)
	// Map the fields before the first document does: OpenSearch would map a first top speed
	// of 125.0, which encoding/json writes 125, as a whole number, and keep it so.
	check(client.PutTemplates(ctx, opensearch.Template{Name: "speeding", Pattern: "speeding-*", Body: []byte(`{
		"index_patterns": ["speeding-*"], "priority": 300, "template": {"mappings": {"properties": {
		"Key": {"type": "keyword"}, "Start": {"type": "date"}, "End": {"type": "date"},
		"Value": {"type": "double"}, "Final": {"type": "boolean"}, "Partition": {"type": "integer"}}}}}`)}))
	sink, err := opensearch.NewSink(client, opensearch.Mapping[window.Result[string, float64]]{
		Index: opensearch.DailyIndex("speeding", func(r window.Result[string, float64]) time.Time { return r.Start }),
		ID: func(r window.Result[string, float64]) string {
			return opensearch.WindowID("speeding", r.Key, r.Start, r.End)
		},
	})
	check(err)
	stream.To(w.Results(), sink)
	// Records too late for their minute go to <topic>.dlq too: nothing is dropped silently.
	dlq, err := kafka.NewDeadLetterSink(kcfg, "", kafka.WithLogger(logger))
	check(err)
	stream.To(stream.Map(w.Late(), func(l window.Late[telemetry.Event]) stream.DeadLetter {
		v, _ := telemetry.Append(nil, l.Value) // an event that decoded encodes
		return l.DeadLetter(p.Origin, []byte(l.Value.CabID), v)
	}), dlq)
	if err := p.Run(ctx); err != ctx.Err() { //nolint:errorlint // Run returns ctx.Err() itself for a clean stop
		log.Fatalf("speeding: %v", err) // a failure exits non-zero
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
