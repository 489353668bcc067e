package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestRegistryEnrichment: replay writes simulated telemetry and the fleet registry (version
// 1, valid from the beginning) to a compacted topic; the test then publishes an update
// (version 2: new drivers) of ten cabs, valid from a minute T in the middle of the data.
// fleetpipeline -registry-topic loads the table and joins it to each cab-stats document as
// of its window: every document carries its cab's fleet, vehicle type and driver, the new
// driver exactly in the windows of the updated cabs from T on.
func TestRegistryEnrichment(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "registry")
	registry := topic + "-registry"
	r := newRun(t, s, topic, "registry")
	o := feed.Options{Sources: "sim", SimEvents: 30_000, SimCabs: 50, Seed: 3}
	replay(t, s, topic, "-source", o.Sources, "-sim-events", fmt.Sprint(o.SimEvents), "-sim-cabs", fmt.Sprint(o.SimCabs),
		"-seed", fmt.Sprint(o.Seed), "-faults=false", "-registry-topic", registry)

	msgs, err := feed.Messages(o, io.Discard)
	require.NoError(t, err)
	var ids []string
	first, last := msgs[0].Event.Time, msgs[0].Event.Time
	for _, m := range msgs {
		ids = append(ids, m.Event.CabID)
		first, last = minTime(first, m.Event.Time), maxTime(last, m.Event.Time)
	}
	v1 := map[string]telemetry.CabRegistration{}
	for _, reg := range fleetsim.Registry(ids, 1) {
		v1[reg.CabID] = reg
	}
	require.Len(t, v1, o.SimCabs)
	from := first.Add(last.Sub(first) / 2).Truncate(time.Minute)
	v2 := map[string]telemetry.CabRegistration{}
	for _, reg := range fleetsim.Registry(ids, 2)[:10] {
		v2[reg.CabID] = reg
	}
	prod, err := kafka.NewProducer(kafka.Config{Brokers: strings.Split(s.brokers, ",")}, registry,
		kafka.EncoderFunc[telemetry.CabRegistration](func(reg telemetry.CabRegistration) (kafka.Message, error) {
			v, err := telemetry.AppendRegistration(nil, reg)
			return kafka.Message{Key: []byte(reg.CabID), Value: v, Timestamp: from}, err
		}))
	require.NoError(t, err)
	var update []telemetry.CabRegistration
	for _, reg := range v2 {
		update = append(update, reg)
	}
	require.NoError(t, prod.Write(context.Background(), update))
	require.NoError(t, prod.Close(context.Background()))

	out := start(t, "fleetpipeline", pipelineBin, r.args(s, "-registry-topic", registry)...).succeed(t, 2*time.Minute)
	require.Contains(t, out, "cab-stats   created")

	docs := newOS(t, s).docs(r.index("cab-stats"))
	require.NotEmpty(t, docs)
	updated := 0
	for _, d := range docs {
		var st telemetry.CabStats
		require.NoError(t, json.Unmarshal(d.Source, &st), "%s", d.Source)
		want, ok := v1[st.CabID]
		require.True(t, ok, "cab %s", st.CabID)
		if n, ok := v2[st.CabID]; ok && !st.WindowStart.Before(from) {
			want = n
			updated++
		}
		require.Equal(t, []string{want.Fleet, want.VehicleType, want.DriverID}, []string{st.Fleet, st.VehicleType, st.DriverID},
			"%s window %s (update from %s)", st.CabID, st.WindowStart, from)
	}
	require.Positive(t, updated, "documents after the update")
	t.Logf("%d cab-stats documents, %d with the updated driver (from %s)", len(docs), updated, from.Format(time.RFC3339))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestRegistryTopicMissing: a -registry-topic that does not exist stops the job at start,
// exit 1, with an error that names the flag and what to do. It said "registry <topic>: ...
// create it with kafka.EnsureCompactedTopic", a Go function an operator cannot call, and
// named no flag.
func TestRegistryTopicMissing(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "registry-missing")
	r := newRun(t, s, topic, "registry-missing")
	missing := topic + "-registry" // never created
	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-registry-topic", missing)...)
	err := p.wait(t, 2*time.Minute)
	require.Error(t, err, "the job must not run without its registry")
	out := p.out.String()
	require.Contains(t, out, "fleetpipeline: -registry-topic "+missing+": no such topic")
	require.Contains(t, out, "replay -registry-topic")
	require.Contains(t, out, kafka.ErrTopicNotFound.Error(), "the library's error is kept")
}
