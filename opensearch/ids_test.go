package opensearch_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

func TestWindowID(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	end := start.Add(time.Minute)
	id := opensearch.WindowID("cab-stats", "CAB-0042", start, end)
	require.Len(t, id, 32)
	// Stable across runs, processes and time zones.
	require.Equal(t, id, opensearch.WindowID("cab-stats", "CAB-0042", start.In(time.FixedZone("x", 3600)), end))
	require.Equal(t, "e23b4fc111086ed7c676ab4d9e1dc889", id)
	seen := map[string]bool{id: true}
	for _, other := range []string{
		opensearch.WindowID("cab-stats2", "CAB-0042", start, end),
		opensearch.WindowID("cab-stats", "CAB-0043", start, end),
		opensearch.WindowID("cab-stats", "CAB-0042", start.Add(time.Nanosecond), end),
		opensearch.WindowID("cab-stats", "CAB-0042", start, end.Add(time.Second)),
		opensearch.WindowID("cab-statsC", "AB-0042", start, end),
	} {
		require.False(t, seen[other], other)
		seen[other] = true
	}
	require.Equal(t, "x:"+id, string(opensearch.AppendWindowID([]byte("x:"), "cab-stats", "CAB-0042", start, end)))
}

func TestDailyIndex(t *testing.T) {
	f := opensearch.DailyIndex("cab-stats", func(t time.Time) time.Time { return t })
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), "cab-stats-2026.11.25"},
		{time.Date(2026, 11, 25, 23, 59, 59, 999, time.UTC), "cab-stats-2026.11.25"},
		{time.Date(2026, 11, 26, 0, 30, 0, 0, cet), "cab-stats-2026.11.25"}, // UTC day
		{time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), "cab-stats-2026.11.26"},
		{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "cab-stats-1969.12.31"},
		{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "cab-stats-2026.11.25"},
	} {
		require.Equal(t, tc.want, f(tc.in), tc.in.String())
	}
	require.Equal(t, "fixed", opensearch.FixedIndex[int]("fixed")(7))
}

func TestTemplates(t *testing.T) {
	ts, err := opensearch.Templates(opensearch.WithReplicas(0), opensearch.WithRawTelemetry(), opensearch.WithAppendOnlyDataStreams())
	require.NoError(t, err)
	require.Len(t, ts, 6)
	want := map[string]string{
		opensearch.TemplateCabStats:     opensearch.PatternCabStats,
		opensearch.TemplateZoneDemand:   opensearch.PatternZoneDemand,
		opensearch.TemplateZoneSupply:   opensearch.PatternZoneSupply,
		opensearch.TemplateRidePickups:  opensearch.PatternRidePickups,
		opensearch.TemplateCabAlerts:    opensearch.PatternCabAlerts,
		opensearch.TemplateCabTelemetry: opensearch.PatternCabTelemetry,
	}
	for _, tpl := range ts {
		require.Equal(t, want[tpl.Name], tpl.Pattern)
		var body struct {
			Patterns   []string        `json:"index_patterns"`
			DataStream json.RawMessage `json:"data_stream"`
			Template   struct {
				Settings struct {
					Index struct {
						Replicas int `json:"number_of_replicas"`
					} `json:"index"`
				} `json:"settings"`
				Mappings struct {
					Properties map[string]struct {
						Type string `json:"type"`
					} `json:"properties"`
				} `json:"mappings"`
			} `json:"template"`
		}
		require.NoError(t, json.Unmarshal(tpl.Body, &body))
		require.Equal(t, []string{tpl.Pattern}, body.Patterns)
		require.Zero(t, body.Template.Settings.Index.Replicas)
		props := body.Template.Mappings.Properties
		require.Equal(t, "date", props["@timestamp"].Type, tpl.Name)
		switch tpl.Name {
		case opensearch.TemplateCabStats:
			require.Equal(t, "geo_point", props["last_location"].Type)
			require.Equal(t, "keyword", props["cab_id"].Type)
			require.Equal(t, "double", props["distance_km"].Type)
			require.Nil(t, body.DataStream)
		case opensearch.TemplateZoneDemand:
			require.Equal(t, "geo_point", props["location"].Type)
			require.Equal(t, "keyword", props["zone"].Type)
		case opensearch.TemplateZoneSupply:
			require.Equal(t, "geo_point", props["location"].Type)
			require.Equal(t, "double", props["supply_demand_ratio"].Type)
			require.Equal(t, "long", props["available_cabs"].Type)
		case opensearch.TemplateRidePickups:
			require.Equal(t, "double", props["wait_s"].Type)
			require.Equal(t, "keyword", props["request_id"].Type)
		case opensearch.TemplateCabAlerts:
			require.Equal(t, "object", props["details"].Type)
			require.NotNil(t, body.DataStream)
		case opensearch.TemplateCabTelemetry:
			require.Equal(t, "geo_point", props["location"].Type)
		}
	}
	_, err = opensearch.Templates(opensearch.WithShards(0))
	require.ErrorIs(t, err, opensearch.ErrInvalidOption)
}

func TestNewSinkInvalid(t *testing.T) {
	c := newFakeClient(t, newFake())
	for name, tc := range map[string]struct {
		m    opensearch.Mapping[rec]
		opts []opensearch.SinkOption
	}{
		"NoIndex":     {m: opensearch.Mapping[rec]{}},
		"DocAndIndex": {m: opensearch.Mapping[rec]{Doc: func(rec) (opensearch.Doc, error) { return opensearch.Doc{}, nil }, Index: recMapping.Index}},
		"FlushBytes":  {m: recMapping, opts: []opensearch.SinkOption{opensearch.WithFlushBytes(0)}},
		"InFlight":    {m: recMapping, opts: []opensearch.SinkOption{opensearch.WithMaxInFlightBytes(-1)}},
		"Concurrency": {m: recMapping, opts: []opensearch.SinkOption{opensearch.WithConcurrency(0)}},
		"Retry":       {m: recMapping, opts: []opensearch.SinkOption{opensearch.WithRetry(stream.RetryPolicy{Initial: time.Second, Max: time.Millisecond})}},
		"OpType":      {m: recMapping, opts: []opensearch.SinkOption{opensearch.WithOpType("upsert")}},
		"DeadLetter":  {m: recMapping, opts: []opensearch.SinkOption{opensearch.WithDeadLetter(nil)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := opensearch.NewSink(c, tc.m, tc.opts...)
			require.ErrorIs(t, err, opensearch.ErrInvalidOption)
		})
	}
}
