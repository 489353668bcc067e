package opensearch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestTemplatesMapEveryDocumentField: a document of each kind the SDK writes, with every
// optional field filled in, is indexed into a fresh index of its template on the real node,
// and the index's mapping afterwards holds exactly the template's fields. A field the template
// leaves out would be mapped dynamically: a mapping update (a cluster state change) in the
// first bulk request of every new daily index, and a type OpenSearch guesses.
func TestTemplatesMapEveryDocumentField(t *testing.T) {
	n := newNode(t)
	tpls, err := opensearch.Templates(opensearch.WithReplicas(0), opensearch.WithRawTelemetry())
	require.NoError(t, err)
	require.NoError(t, n.client.EnsureTemplates(t.Context(), opensearch.WithReplicas(0), opensearch.WithRawTelemetry()))

	at := time.Date(2013, 7, 1, 10, 0, 0, 0, time.UTC)
	loc := telemetry.Location{Lat: 41.15, Lon: -8.61}
	ratio := 0.5
	docs := map[string]func() ([]byte, error){
		opensearch.TemplateCabStats: func() ([]byte, error) {
			return telemetry.CabStats{CabID: "cab-1", WindowStart: at, WindowEnd: at.Add(time.Minute), Timestamp: at, Events: 3,
				DistanceKm: 1.5, AvgSpeedKmh: 30, MaxSpeedKmh: 50, LastLocation: loc, LastStatus: telemetry.StatusHired,
				Fleet: "north", VehicleType: "sedan", DriverID: "d-1"}.AppendJSON(nil)
		},
		opensearch.TemplateZoneDemand: func() ([]byte, error) {
			return telemetry.ZoneDemand{Zone: "ez3f5t", WindowStart: at, WindowEnd: at.Add(time.Minute), Timestamp: at, Events: 3,
				Cabs: 2, Pickups: 1, AvgSpeedKmh: 20, SpeedSamples: 2, SpeedSumKmh: 40, Location: loc}.AppendJSON(nil)
		},
		opensearch.TemplateZoneSupply: func() ([]byte, error) {
			return telemetry.ZoneSupply{Zone: "ez3f5t", WindowStart: at, WindowEnd: at.Add(time.Minute), Requests: 2, Cancelled: 1,
				AvailableCabs: 1, SupplyDemandRatio: &ratio, Location: loc}.AppendJSON(nil)
		},
		opensearch.TemplateRidePickups: func() ([]byte, error) {
			return telemetry.RidePickup{RequestID: "r-1", CabID: "cab-1", TripID: "t-1", AssignedAt: at, PickupAt: at.Add(time.Minute),
				WaitS: 60, DistanceM: 300, Location: loc}.AppendJSON(nil)
		},
		opensearch.TemplateCabAlerts: func() ([]byte, error) {
			return telemetry.Alert{ID: "cab-1/geofence_enter/x", Type: telemetry.AlertGeofenceEnter, CabID: "cab-1", Time: at, Location: loc,
				Severity: telemetry.SeverityHigh, Details: telemetry.AlertDetails{Value: 1, Limit: 2, DurationS: 3, Fence: "airport"}}.AppendJSON(nil)
		},
		opensearch.TemplateCabTelemetry: func() ([]byte, error) {
			return telemetry.Event{CabID: "cab-1", TripID: "t-1", Time: at, Lat: loc.Lat, Lon: loc.Lon, Status: telemetry.StatusHired,
				SpeedKmh: 30, HeadingDeg: 90, EngineTempC: 90, FuelPct: 50, BatteryV: 12.6, OdometerKm: 1000,
				Has: telemetry.HasTripID | telemetry.HasSpeed | telemetry.HasHeading | telemetry.HasEngineTemp | telemetry.HasFuel |
					telemetry.HasBattery | telemetry.HasOdometer}.MarshalJSON()
		},
	}
	require.Len(t, tpls, len(docs))
	for _, tpl := range tpls {
		t.Run(tpl.Name, func(t *testing.T) {
			var body struct {
				Template struct {
					Mappings json.RawMessage `json:"mappings"`
				} `json:"template"`
			}
			require.NoError(t, json.Unmarshal(tpl.Body, &body))
			want := fieldPaths(t, body.Template.Mappings)

			doc, err := docs[tpl.Name]()
			require.NoError(t, err)
			index := testenv.UniqueName(t, strings.TrimSuffix(tpl.Pattern, "*"))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, _ = n.call(ctx, "DELETE", "/"+index, "")
			})
			n.must(t, "PUT", "/"+index+"/_doc/1?refresh=true", string(doc))
			var got map[string]struct {
				Mappings json.RawMessage `json:"mappings"`
			}
			require.NoError(t, json.Unmarshal(n.must(t, "GET", "/"+index+"/_mapping", ""), &got))
			require.Len(t, got, 1)
			for _, m := range got {
				require.Equal(t, want, fieldPaths(t, m.Mappings), "fields of %s", doc)
			}
		})
	}
}

// fieldPaths returns the dotted path and type of every field of a mapping, objects' fields
// included.
func fieldPaths(t *testing.T, mappings json.RawMessage) []string {
	t.Helper()
	type props = map[string]json.RawMessage
	var out []string
	var walk func(prefix string, ps props)
	walk = func(prefix string, ps props) {
		for _, name := range slices.Sorted(maps.Keys(ps)) {
			var f struct {
				Type       string `json:"type"`
				Properties props  `json:"properties"`
			}
			require.NoError(t, json.Unmarshal(ps[name], &f))
			if f.Type == "object" {
				f.Type = "" // the default, which a mapping does not show
			}
			out = append(out, prefix+name+":"+f.Type)
			walk(prefix+name+".", f.Properties)
		}
	}
	var m struct {
		Properties props `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(mappings, &m))
	walk("", m.Properties)
	return out
}

// TestPutTemplates: a template of one's own (an index the SDK has no template for) is
// installed on the real node, and an index created by a sink's first write gets its mapping
// (a keyword field stays a keyword, not the text-and-keyword OpenSearch would guess); a
// second PUT of the same template is no error. A Template without a Name or with a Body that
// is not JSON installs nothing and fails with ErrInvalidOption.
func TestPutTemplates(t *testing.T) {
	n := newNode(t)
	name := testenv.UniqueName(t, "things")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "DELETE", "/"+name+"-*", "")
		_, _ = n.call(ctx, "DELETE", "/_index_template/"+name, "")
	})
	tpl := opensearch.Template{Name: name, Pattern: name + "-*", Body: []byte(`{"index_patterns":["` + name + `-*"],"priority":300,
		"template":{"settings":{"number_of_replicas":0},"mappings":{"dynamic":"strict","properties":{"id":{"type":"keyword"},"n":{"type":"long"}}}}}`)}
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl))
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl), "idempotent")

	s, err := opensearch.NewSink(n.client, opensearch.Mapping[rec]{Index: opensearch.FixedIndex[rec](name + "-1"),
		ID: func(r rec) string { return r.ID }, Body: func(dst []byte, r rec) ([]byte, error) {
			b, err := json.Marshal(r)
			return append(dst, b...), err
		}})
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), recs(3)))
	var m map[string]struct {
		Mappings struct {
			Dynamic    string                       `json:"dynamic"`
			Properties map[string]map[string]string `json:"properties"`
		} `json:"mappings"`
	}
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/"+name+"-1/_mapping", ""), &m))
	got := m[name+"-1"].Mappings
	require.Equal(t, "strict", got.Dynamic, "the index has the template's mapping")
	require.Equal(t, "keyword", got.Properties["id"]["type"])

	for _, bad := range []opensearch.Template{{Body: tpl.Body}, {Name: "x", Body: []byte(`{"index_patterns":`)}, {Name: "x"}} {
		err := n.client.PutTemplates(t.Context(), tpl, bad)
		require.ErrorIs(t, err, opensearch.ErrInvalidOption)
		require.ErrorContains(t, err, "Template[1]")
	}
}

// TestPutTemplatesKeepsNewerVersion: during a rolling upgrade an instance of the older
// release, restarting, put its older template back over the newer release's (every template
// was replaced whatever the installed one's version), so the next day's index had the older
// mappings. A template with a version no longer replaces a higher one; an equal or higher
// version replaces it, and a template without a version always does.
func TestPutTemplatesKeepsNewerVersion(t *testing.T) {
	n := newNode(t)
	tpl, installed := versionedTemplate(t, n)
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl("3", 0)))
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl("2", 1)), "an older release's start")
	v, r := installed()
	require.Equal(t, float64(3), v, "the newer version stays")
	require.Equal(t, "0", r)

	require.NoError(t, n.client.PutTemplates(t.Context(), tpl("3", 2)))
	_, r = installed()
	require.Equal(t, "2", r, "the same version replaces")
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl("4", 0)))
	v, _ = installed()
	require.Equal(t, float64(4), v, "a newer version replaces")
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl("", 1)))
	v, r = installed()
	require.Nil(t, v, "a template without a version replaces whatever is there")
	require.Equal(t, "1", r)
}

// TestRawTelemetryDataStream: with WithRawTelemetry and WithAppendOnlyDataStreams, the raw
// telemetry template makes a data stream that takes the SDK's own telemetry events, written
// as telemetry.Append writes them (WithDataStream), and a replay finds them existing. The
// events carry their time in "ts", as the design's schema says, and no "@timestamp": the
// template's data stream took "@timestamp" as its timestamp field, so OpenSearch refused
// every event ("data stream timestamp field [@timestamp] is missing") and the sink
// dead-lettered them all. The template is installed under a name and pattern of the test's
// own, so that the node's shared cab-telemetry-* template is left as it is.
func TestRawTelemetryDataStream(t *testing.T) {
	n := newNode(t)
	name, body := ownTemplate(t, n, opensearch.TemplateCabTelemetry, "rawtel",
		opensearch.WithReplicas(0), opensearch.WithRawTelemetry(), opensearch.WithAppendOnlyDataStreams())
	putOwnTemplate(t, n, name, body)

	var dead []stream.DeadLetter
	s, err := opensearch.NewSink(n.client, opensearch.Mapping[telemetry.Event]{
		Index: opensearch.FixedIndex[telemetry.Event](name + "-events"),
		ID:    func(e telemetry.Event) string { return e.CabID + "/" + e.Time.Format(time.RFC3339Nano) },
		Body:  telemetry.Append,
	}, opensearch.WithDataStream(), opensearch.WithDeadLetter(stream.DeadLetterFunc(func(_ context.Context, d []stream.DeadLetter) error {
		dead = append(dead, d...)
		return nil
	})))
	require.NoError(t, err)
	at := time.Date(2013, 7, 1, 10, 0, 0, 0, time.UTC)
	events := make([]telemetry.Event, 10)
	for i := range events {
		events[i] = telemetry.Event{CabID: fmt.Sprintf("cab-%d", i), Time: at.Add(time.Duration(i) * time.Second),
			Lat: 41.15, Lon: -8.61, Status: telemetry.StatusHired, SpeedKmh: 30, Has: telemetry.HasSpeed}
	}
	deadErr := func() string {
		if len(dead) == 0 {
			return ""
		}
		return fmt.Sprintf("%d dead-lettered, the first: %s", len(dead), dead[0].Err)
	}
	require.NoError(t, s.Write(t.Context(), events))
	require.Empty(t, deadErr())
	require.Equal(t, len(events), n.count(t, name+"-events"))
	require.NoError(t, s.Write(t.Context(), events), "a replay")
	require.Empty(t, deadErr())
	st := s.Stats()
	require.Equal(t, int64(len(events)), st.Indexed)
	require.Equal(t, int64(len(events)), st.Existed)
}

// TestTemplatesLongUnknownString: a document with a string field no template names, longer
// than Lucene takes as one term (32,766 bytes), is indexed, its value kept in _source and
// left out of the index; a value at the bound, 8,191 characters of 3 bytes (the most a
// character of one UTF-16 unit, as ignore_above counts them, takes), is indexed and found. The dynamic keyword mapping had no ignore_above, so OpenSearch refused the
// whole document ("Document contains at least one immense term") and the sink dead-lettered
// it. The node first holds the template as the SDK installed it before (version 1, no
// ignore_above); installing the SDK's replaces it with the newer version. The cab-stats
// template is installed under a name and pattern of the test's own, so that the node's
// shared one is left as it is.
func TestTemplatesLongUnknownString(t *testing.T) {
	n := newNode(t)
	name, current := ownTemplate(t, n, opensearch.TemplateCabStats, "longstr", opensearch.WithReplicas(0))
	b, err := json.Marshal(current)
	require.NoError(t, err)
	var older map[string]any // as the SDK installed it before
	require.NoError(t, json.Unmarshal(b, &older))
	version := current["version"]
	older["version"] = 1
	older["template"].(map[string]any)["mappings"].(map[string]any)["dynamic_templates"] = []any{
		map[string]any{"strings_as_keywords": map[string]any{"match_mapping_type": "string", "mapping": map[string]any{"type": "keyword"}}}}
	putOwnTemplate(t, n, name, older)
	putOwnTemplate(t, n, name, current)
	var got struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				Version float64 `json:"version"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/_index_template/"+name, ""), &got))
	require.Len(t, got.IndexTemplates, 1)
	require.Equal(t, version, got.IndexTemplates[0].IndexTemplate.Version, "the newer template replaced the older")
	require.Greater(t, got.IndexTemplates[0].IndexTemplate.Version, float64(1), "templateVersion bumped with the mapping")

	long, atBound := strings.Repeat("x", 40_000), strings.Repeat("€", 8191)
	var dead []stream.DeadLetter
	s, err := opensearch.NewSink(n.client, opensearch.Mapping[[2]string]{
		Index: opensearch.FixedIndex[[2]string](name + "-1"),
		ID:    func(v [2]string) string { return v[0] },
		Body: func(dst []byte, v [2]string) ([]byte, error) {
			return fmt.Appendf(dst, `{"cab_id":%q,"notes":%q}`, v[0], v[1]), nil
		},
	}, opensearch.WithDeadLetter(stream.DeadLetterFunc(func(_ context.Context, d []stream.DeadLetter) error {
		dead = append(dead, d...)
		return nil
	})))
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), [][2]string{{"long", long}, {"at-bound", atBound}}))
	for _, d := range dead {
		t.Errorf("dead-lettered %s: %s", d.ID, d.Err)
	}
	require.Equal(t, 2, n.count(t, name+"-1"))
	var doc struct {
		Source struct {
			Notes string `json:"notes"`
		} `json:"_source"`
	}
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/"+name+"-1/_doc/long", ""), &doc))
	require.Equal(t, long, doc.Source.Notes, "kept in _source")
	for v, want := range map[string]int{atBound: 1, long: 0} {
		q, err := json.Marshal(map[string]any{"query": map[string]any{"term": map[string]any{"notes": v}}})
		require.NoError(t, err)
		var r struct {
			Count int `json:"count"`
		}
		require.NoError(t, json.Unmarshal(n.must(t, "POST", "/"+name+"-1/_count", string(q)), &r))
		require.Equal(t, want, r.Count, "documents found by a term query for a value of %d bytes", len(v))
	}
}

// TestEnsureTemplatesPassesOverSilentNode: with several addresses, a node that takes the
// connection and never answers failed EnsureTemplates after one request timeout (a minute by
// default), though the other node answered; the job's start then waited and tried again. Now
// the request that got no answer goes to the next address, and the transport passes the
// silent node over for the rest of the call: it costs one timeout, whichever address it is.
func TestEnsureTemplatesPassesOverSilentNode(t *testing.T) {
	n := newNode(t)
	const timeout = time.Second
	for _, silentFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("silent first %t", silentFirst), func(t *testing.T) {
			start := time.Now()
			require.NoError(t, n.client.EnsureTemplates(t.Context(), opensearch.WithReplicas(0)))
			alone := time.Since(start) // the real node's own time for the call

			silent, accepted := testenv.SilentListener(t)
			c := n.clientWith(t, "http://"+silent, silentFirst, timeout)
			start = time.Now()
			require.NoError(t, c.EnsureTemplates(t.Context(), opensearch.WithReplicas(0)), "the real node answers")
			took := time.Since(start)
			require.Len(t, accepted, 1, "the silent node was tried once")
			require.Less(t, took, timeout+2*alone+timeout/2, "one timeout (%v) and the real node's time (%v)", timeout, alone)
		})
	}
}

// TestTemplatesPassOverUnavailableNode, on the real node and a node answering 503 (cut off
// from its cluster: no cluster-manager): EnsureTemplates installs the templates, and
// PutTemplates leaves a newer installed version as it is. Before, a template request that met
// that node ended with its 503: EnsureTemplates failed though the real node answered, and
// where the GET of the installed version met it, the version went unread and the PUT, on the
// real node, replaced the newer template with an older one. opensearch-go shuffles the
// addresses, so the order in Config does not say which node a client asks first: each case
// takes fresh clients, with the node first and last in Config, until the node got the request
// of the case.
func TestTemplatesPassOverUnavailableNode(t *testing.T) {
	n := newNode(t)
	tpl, installed := versionedTemplate(t, n)
	require.NoError(t, n.client.PutTemplates(t.Context(), tpl("3", 0)))
	for _, tc := range []struct {
		request string // what the unavailable node must get
		call    func(c *opensearch.Client) error
	}{
		{"PUT /_index_template/", func(c *opensearch.Client) error { return c.EnsureTemplates(t.Context(), opensearch.WithReplicas(0)) }},
		{"GET /_index_template/" + tpl("", 0).Name, func(c *opensearch.Client) error { return c.PutTemplates(t.Context(), tpl("2", 1)) }},
	} {
		t.Run(tc.request, func(t *testing.T) {
			for try := 0; ; try++ {
				require.Less(t, try, 20, "the unavailable node never got %s", tc.request)
				u, got := unavailableNode(t)
				require.NoError(t, tc.call(n.clientWith(t, u, try%2 == 0, time.Minute)), "the real node answers")
				v, _ := installed()
				require.Equal(t, float64(3), v, "the newer version stays")
				if slices.ContainsFunc(got(), func(l string) bool { return strings.HasPrefix(l, tc.request) }) {
					return
				}
			}
		})
	}
}

// TestTemplatesErrorNamesEveryAddress: when no address answers (one takes connections and
// never answers, the other refuses them), EnsureTemplates' error names each node and what
// it did, not only the last one tried: before, it said "PUT http://<one>/...: connection
// refused" (or the other's timeout), and the other node's failure was only in the client's
// log, which discards by default.
func TestTemplatesErrorNamesEveryAddress(t *testing.T) {
	silent, _ := testenv.SilentListener(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://" + silent, "http://" + refused},
		RequestTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	err = c.EnsureTemplates(t.Context())
	var te *opensearch.TransportError
	require.ErrorAs(t, err, &te)
	require.ErrorContains(t, err, "no address answered")
	require.ErrorContains(t, err, "http://"+silent+"/_index_template/", "the silent node")
	require.ErrorContains(t, err, "http://"+refused+"/_index_template/", "the refusing node")
	require.ErrorIs(t, err, context.DeadlineExceeded, "the silent node's timeout")
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "the other's refusal")
}

// versionedTemplate returns a template of the test's own, with a version (none if "") and a
// number of replicas, and a func that reads the installed one's; the template is deleted
// after the test.
func versionedTemplate(t *testing.T, n *node) (tpl func(version string, replicas int) opensearch.Template, installed func() (version any, replicas string)) {
	t.Helper()
	name := testenv.UniqueName(t, "versioned")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "DELETE", "/_index_template/"+name, "")
	})
	tpl = func(version string, replicas int) opensearch.Template {
		v := ""
		if version != "" {
			v = `"version":` + version + `,`
		}
		return opensearch.Template{Name: name, Pattern: name + "-*", Body: fmt.Appendf(nil, `{"index_patterns":["%s-*"],"priority":300,%s
			"template":{"settings":{"number_of_replicas":%d}}}`, name, v, replicas)}
	}
	installed = func() (version any, replicas string) {
		var got struct {
			IndexTemplates []struct {
				IndexTemplate struct {
					Version  any `json:"version"`
					Template struct {
						Settings struct {
							Index struct {
								Replicas string `json:"number_of_replicas"`
							} `json:"index"`
						} `json:"settings"`
					} `json:"template"`
				} `json:"index_template"`
			} `json:"index_templates"`
		}
		require.NoError(t, json.Unmarshal(n.must(t, "GET", "/_index_template/"+name, ""), &got))
		require.Len(t, got.IndexTemplates, 1)
		it := got.IndexTemplates[0].IndexTemplate
		return it.Version, it.Template.Settings.Index.Replicas
	}
	return tpl, installed
}

// ownTemplate returns the body of the SDK's template tplName (Templates(opts...)) for a
// pattern of the test's own, <name>-*, with a priority above the SDK's, and removes the
// template name and what it matches after the test: the node's shared templates are left
// as they are.
func ownTemplate(t *testing.T, n *node, tplName, prefix string, opts ...opensearch.TemplateOption) (name string, body map[string]any) {
	t.Helper()
	tpls, err := opensearch.Templates(opts...)
	require.NoError(t, err)
	i := slices.IndexFunc(tpls, func(t opensearch.Template) bool { return t.Name == tplName })
	require.GreaterOrEqual(t, i, 0)
	require.NoError(t, json.Unmarshal(tpls[i].Body, &body))
	name = testenv.UniqueName(t, prefix)
	body["index_patterns"], body["priority"] = []string{name + "-*"}, 500
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "DELETE", "/_data_stream/"+name+"-*", "")
		_, _ = n.call(ctx, "DELETE", "/"+name+"-*", "")
		_, _ = n.call(ctx, "DELETE", "/_index_template/"+name, "")
	})
	return name, body
}

// putOwnTemplate installs body as the template name, for <name>-*.
func putOwnTemplate(t *testing.T, n *node, name string, body map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	require.NoError(t, n.client.PutTemplates(t.Context(), opensearch.Template{Name: name, Pattern: name + "-*", Body: b}))
}
