package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// savedObject is one line of dashboards/fleetstream.ndjson.
type savedObject struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Attributes map[string]any `json:"attributes"`
	References []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"references"`
}

// visAgg is one aggregation of a visualization's visState.
type visAgg struct {
	ID      string         `json:"id"`
	Enabled bool           `json:"enabled"`
	Type    string         `json:"type"`
	Schema  string         `json:"schema"`
	Params  map[string]any `json:"params"`
}

// visualization is a parsed visualization saved object.
type visualization struct {
	id, title   string
	indexTitle  string // title of the index pattern it reads
	timeField   string // the index pattern's time field
	aggs        []visAgg
	query       string // the kuery/lucene query of its search source ("" = all)
	queryFilter []any
}

// loadDashboards parses the saved objects: every line a JSON object, and the JSON strings
// inside (visState, searchSourceJSON, panelsJSON) JSON too.
func loadDashboards(t *testing.T) ([]savedObject, []visualization) {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), "dashboards", "fleetstream.ndjson"))
	require.NoError(t, err)
	defer f.Close()
	var objs []savedObject
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var o savedObject
		require.NoError(t, json.Unmarshal(sc.Bytes(), &o), "line %d", line)
		require.NotEmpty(t, o.ID, "line %d: id", line)
		require.NotEmpty(t, o.Type, "line %d: type", line)
		objs = append(objs, o)
	}
	require.NoError(t, sc.Err())

	byID := map[string]savedObject{}
	for _, o := range objs {
		require.NotContains(t, byID, o.ID, "saved object id twice")
		byID[o.ID] = o
	}
	jsonAttr := func(o savedObject, v any, keys ...string) {
		t.Helper()
		var cur any = o.Attributes
		for _, k := range keys {
			m, ok := cur.(map[string]any)
			require.True(t, ok, "%s: %s is not an object", o.ID, strings.Join(keys, "."))
			cur = m[k]
		}
		s, ok := cur.(string)
		require.True(t, ok, "%s: %s is not a string", o.ID, strings.Join(keys, "."))
		require.NoError(t, json.Unmarshal([]byte(s), v), "%s: %s", o.ID, strings.Join(keys, "."))
	}
	// Every reference resolves, within the file.
	for _, o := range objs {
		for _, r := range o.References {
			ref, ok := byID[r.ID]
			require.True(t, ok, "%s references missing %s %s", o.ID, r.Type, r.ID)
			require.Equal(t, r.Type, ref.Type, "%s references %s", o.ID, r.ID)
		}
	}

	var vis []visualization
	counts := map[string]int{}
	for _, o := range objs {
		counts[o.Type]++
		switch o.Type {
		case "index-pattern":
			require.NotEmpty(t, o.Attributes["title"], o.ID)
		case "visualization":
			var state struct {
				Title string   `json:"title"`
				Type  string   `json:"type"`
				Aggs  []visAgg `json:"aggs"`
			}
			jsonAttr(o, &state, "visState")
			var src struct {
				IndexRefName string `json:"indexRefName"`
				Query        struct {
					Query    any    `json:"query"`
					Language string `json:"language"`
				} `json:"query"`
				Filter []any `json:"filter"`
			}
			jsonAttr(o, &src, "kibanaSavedObjectMeta", "searchSourceJSON")
			var pattern savedObject
			for _, r := range o.References {
				if r.Name == src.IndexRefName {
					pattern = byID[r.ID]
				}
			}
			require.Equal(t, "index-pattern", pattern.Type, "%s: index pattern of %q", o.ID, src.IndexRefName)
			q, _ := src.Query.Query.(string)
			tf, _ := pattern.Attributes["timeFieldName"].(string)
			vis = append(vis, visualization{
				id: o.ID, title: state.Title, aggs: state.Aggs,
				indexTitle: pattern.Attributes["title"].(string), timeField: tf,
				query: q, queryFilter: src.Filter,
			})
		case "dashboard":
			var panels []struct {
				PanelRefName string `json:"panelRefName"`
			}
			jsonAttr(o, &panels, "panelsJSON")
			var src map[string]any
			jsonAttr(o, &src, "kibanaSavedObjectMeta", "searchSourceJSON")
			var opts map[string]any
			jsonAttr(o, &opts, "optionsJSON")
			require.NotEmpty(t, panels, o.ID)
			for _, p := range panels {
				found := false
				for _, r := range o.References {
					found = found || r.Name == p.PanelRefName
				}
				require.True(t, found, "%s: panel %s has no reference", o.ID, p.PanelRefName)
			}
		}
	}
	require.Equal(t, map[string]int{"index-pattern": 5, "visualization": 5, "dashboard": 1}, counts)
	return objs, vis
}

// fieldType returns the mapping type of a (dotted) field in a template's properties.
func fieldType(props map[string]any, field string) string {
	parts := strings.Split(field, ".")
	for i, p := range parts {
		f, ok := props[p].(map[string]any)
		if !ok {
			return ""
		}
		if i == len(parts)-1 {
			if typ, ok := f["type"].(string); ok {
				return typ
			}
			return "object"
		}
		props, _ = f["properties"].(map[string]any)
	}
	return ""
}

var numeric = []string{"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}

// fieldTypes says which mapping types an aggregation accepts.
func fieldTypes(aggType string) []string {
	switch aggType {
	case "sum", "avg", "min", "max", "median", "percentiles":
		return numeric
	case "date_histogram":
		return []string{"date", "date_nanos"}
	case "geohash_grid", "geotile_grid", "geo_centroid", "geo_bounds":
		return []string{"geo_point"}
	case "terms", "cardinality", "significant_terms":
		return append([]string{"keyword", "ip", "boolean", "date"}, numeric...)
	case "histogram", "range":
		return numeric
	}
	return nil
}

// osInterval translates a Dashboards date_histogram interval to OpenSearch's.
func osInterval(t *testing.T, v string) (key, value string) {
	t.Helper()
	units := map[string]string{"ms": "1ms", "s": "1s", "m": "1m", "h": "1h", "d": "1d", "w": "1w", "M": "1M", "y": "1y"}
	if u, ok := units[v]; ok {
		return "calendar_interval", u
	}
	require.Regexp(t, `^\d+(ms|s|m|h|d)$`, v, "date_histogram interval")
	return "fixed_interval", v
}

// translate turns a visualization's aggs into an OpenSearch aggregation, the way Dashboards
// nests them: bucket aggregations in their order, the metrics inside the innermost one (and a
// metric a terms aggregation orders by also directly inside it). It returns the aggregation
// and the ids of the bucket levels.
func translate(t *testing.T, v visualization) (map[string]any, []string) {
	t.Helper()
	var metrics, buckets []visAgg
	for _, a := range v.aggs {
		if !a.Enabled {
			continue
		}
		if a.Schema == "metric" {
			metrics = append(metrics, a)
		} else {
			buckets = append(buckets, a)
		}
	}
	require.NotEmpty(t, metrics, "%s: metrics", v.id)
	metricAgg := func(a visAgg) (map[string]any, bool) {
		if a.Type == "count" {
			return nil, false // doc_count
		}
		field, _ := a.Params["field"].(string)
		require.NotEmpty(t, field, "%s: agg %s has no field", v.id, a.ID)
		require.NotNil(t, fieldTypes(a.Type), "%s: metric %s of type %s is not supported by this test", v.id, a.ID, a.Type)
		return map[string]any{a.Type: map[string]any{"field": field}}, true
	}
	inner := map[string]any{}
	for _, m := range metrics {
		if agg, ok := metricAgg(m); ok {
			inner[m.ID] = agg
		}
	}
	var levels []string
	for i := len(buckets) - 1; i >= 0; i-- {
		b := buckets[i]
		field, _ := b.Params["field"].(string)
		require.NotEmpty(t, field, "%s: agg %s has no field", v.id, b.ID)
		var agg map[string]any
		switch b.Type {
		case "date_histogram":
			iv, _ := b.Params["interval"].(string)
			if iv == "auto" || iv == "" {
				agg = map[string]any{"auto_date_histogram": map[string]any{"field": field, "buckets": 50}}
			} else {
				k, val := osInterval(t, iv)
				h := map[string]any{"field": field, k: val}
				if n, ok := b.Params["min_doc_count"].(float64); ok {
					h["min_doc_count"] = n
				}
				agg = map[string]any{"date_histogram": h}
			}
		case "terms":
			size := 10.0
			if s, ok := b.Params["size"].(float64); ok {
				size = s
			}
			order, _ := b.Params["order"].(string)
			if order == "" {
				order = "desc"
			}
			by, _ := b.Params["orderBy"].(string)
			key := "_count"
			sub := map[string]any{}
			for _, m := range metrics {
				if m.ID == by {
					if a, ok := metricAgg(m); ok {
						key = by
						sub[by] = a
					}
				}
			}
			agg = map[string]any{"terms": map[string]any{"field": field, "size": size, "order": map[string]any{key: order}}}
			for k, a := range sub {
				inner[k] = a // a metric the terms orders by must be its direct child
			}
		case "geohash_grid":
			g := map[string]any{"field": field}
			if p, ok := b.Params["precision"].(float64); ok {
				g["precision"] = p
			}
			agg = map[string]any{"geohash_grid": g}
		default:
			t.Fatalf("%s: bucket aggregation %s of type %s is not supported by this test", v.id, b.ID, b.Type)
		}
		if len(inner) > 0 {
			agg["aggs"] = inner
		}
		inner = map[string]any{b.ID: agg}
		levels = append([]string{b.ID}, levels...)
	}
	return inner, levels
}

// checkBuckets requires at least one bucket at every level, following the first bucket down,
// and a value for every metric in the innermost bucket.
func checkBuckets(t *testing.T, v visualization, aggs map[string]any, levels []string) {
	t.Helper()
	cur := aggs
	for _, id := range levels {
		a, ok := cur[id].(map[string]any)
		require.True(t, ok, "%s: no aggregation %s in %v", v.id, id, cur)
		b, _ := a["buckets"].([]any)
		require.NotEmpty(t, b, "%s: aggregation %s has no bucket", v.id, id)
		cur = b[0].(map[string]any)
		require.Positive(t, cur["doc_count"], "%s: aggregation %s", v.id, id)
	}
	for _, m := range v.aggs {
		if m.Schema != "metric" || m.Type == "count" {
			continue
		}
		val, ok := cur[m.ID].(map[string]any)
		require.True(t, ok, "%s: metric %s missing in %v", v.id, m.ID, cur)
		require.NotNil(t, val["value"], "%s: metric %s has no value", v.id, m.ID)
	}
}

// TestDashboards checks the saved objects against the real templates and data: every field a
// visualization uses exists in the template of its index pattern with a suitable type, and
// each visualization's aggregation, run on the Porto run's indexes, returns buckets.
func TestDashboards(t *testing.T) {
	t.Parallel()
	_, vis := loadDashboards(t)
	s := needServices(t)
	porto, _ := portoRun(t) // installs the templates and writes cab-stats, zone-demand and cab-alerts
	// A simulated fleet with faults, for alerts of every kind, and its ride requests, for the
	// zone supply.
	simTopic := testenv.UniqueName(t, "e2e-dash-sim")
	sim := newRun(t, s, simTopic, "e2e-dash-sim")
	requests := simTopic + "-requests"
	ensureTopic(t, s, requests)
	replay(t, s, simTopic, "-source", "sim", "-sim-events", "100000", "-requests-topic", requests)
	start(t, "fleetpipeline (sim)", pipelineBin, sim.args(s, "-requests-topic", requests)...).succeed(t, 2*time.Minute)
	c := newOS(t, s)

	var tmpl struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				IndexPatterns []string `json:"index_patterns"`
				Template      struct {
					Mappings struct {
						Properties map[string]any `json:"properties"`
					} `json:"mappings"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	c.do("GET", "/_index_template/fleetstream-*", nil, &tmpl)
	propsOf := func(pattern string) map[string]any {
		for _, x := range tmpl.IndexTemplates {
			if slices.Contains(x.IndexTemplate.IndexPatterns, pattern) {
				return x.IndexTemplate.Template.Mappings.Properties
			}
		}
		t.Fatalf("no index template for index pattern %q among %d fleetstream templates", pattern, len(tmpl.IndexTemplates))
		return nil
	}

	for _, run := range []struct {
		name string
		r    pipelineRun
	}{{"porto", porto}, {"sim", sim}} {
		for _, v := range vis {
			if v.indexTitle == "zone-supply-*" && run.name == "porto" {
				continue // the Porto run has no ride requests
			}
			t.Run(run.name+"/"+v.id, func(t *testing.T) { checkVisualization(t, c, run.r, v, propsOf(v.indexTitle)) })
		}
	}
	require.Len(t, vis, 5, fmt.Sprint("visualizations: ", len(vis)))
}

// checkVisualization checks v's fields against the template's properties and runs its
// aggregation on the indexes of run r.
func checkVisualization(t *testing.T, c *osClient, r pipelineRun, v visualization, props map[string]any) {
	t.Helper()
	if v.timeField != "" {
		require.Contains(t, []string{"date", "date_nanos"}, fieldType(props, v.timeField), "time field %s", v.timeField)
	}
	for _, a := range v.aggs {
		field, _ := a.Params["field"].(string)
		if !a.Enabled || field == "" {
			continue
		}
		typ := fieldType(props, field)
		require.NotEmpty(t, typ, "%s aggregates on %s, which template %s lacks", a.Type, field, v.indexTitle)
		require.Contains(t, fieldTypes(a.Type), typ, "%s on %s (mapped as %s)", a.Type, field, typ)
	}

	// The run's indexes: the pattern with the run's tag, which the pattern matches.
	index := strings.TrimSuffix(v.indexTitle, "*") + r.tag + "-*"
	var names []struct {
		Index string `json:"index"`
	}
	c.do("GET", "/_cat/indices/"+index+"?format=json", nil, &names)
	require.NotEmpty(t, names, "indexes %s", index)
	for _, n := range names {
		ok, err := path.Match(v.indexTitle, n.Index)
		require.NoError(t, err)
		require.True(t, ok, "index pattern %q does not match %s", v.indexTitle, n.Index)
	}

	aggs, levels := translate(t, v)
	require.NotEmpty(t, levels, "bucket aggregations")
	query := map[string]any{"match_all": map[string]any{}}
	if v.query != "" {
		query = map[string]any{"query_string": map[string]any{"query": v.query}}
	}
	require.Empty(t, v.queryFilter, "filters are not supported by this test")
	c.refresh(index)
	resp := c.search(index, map[string]any{"size": 0, "query": query, "aggs": aggs})
	got, _ := resp["aggregations"].(map[string]any)
	checkBuckets(t, v, got, levels)
	b, _ := json.Marshal(aggs)
	t.Logf("%s (%s): %s -> %d top-level buckets", v.title, index, b, len(got[levels[0]].(map[string]any)["buckets"].([]any)))
}

// TestDashboardsIndexPatterns: every index the job writes (a template of opensearch.Templates
// without the raw telemetry, which the job does not write) has an index pattern of the same
// title, whose time field is a date in that template; ride-pickups-* (-requests-topic) had
// none. Offline: the templates are built, not installed.
func TestDashboardsIndexPatterns(t *testing.T) {
	objs, _ := loadDashboards(t)
	timeField := map[string]string{} // by index pattern title
	for _, o := range objs {
		if o.Type == "index-pattern" {
			title, _ := o.Attributes["title"].(string)
			tf, _ := o.Attributes["timeFieldName"].(string)
			timeField[title] = tf
		}
	}
	ts, err := opensearch.Templates()
	require.NoError(t, err)
	require.NotEmpty(t, ts)
	for _, tpl := range ts {
		t.Run(tpl.Pattern, func(t *testing.T) {
			tf, ok := timeField[tpl.Pattern]
			require.True(t, ok, "no index pattern titled %q in dashboards/fleetstream.ndjson", tpl.Pattern)
			var body struct {
				Template struct {
					Mappings struct {
						Properties map[string]any `json:"properties"`
					} `json:"mappings"`
				} `json:"template"`
			}
			require.NoError(t, json.Unmarshal(tpl.Body, &body))
			require.Equal(t, "date", fieldType(body.Template.Mappings.Properties, tf), "time field %q of %s", tf, tpl.Pattern)
		})
	}
}
