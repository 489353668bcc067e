// Index templates: Template, the template options, Templates and Client.EnsureTemplates for
// cab-stats-*, zone-demand-*, zone-supply-*, ride-pickups-*, cab-alerts-* and cab-telemetry-*;
// Client.PutTemplates for one's own.

package opensearch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// Index templates installed by EnsureTemplates, and the index patterns they match.
const (
	TemplateCabStats     = "fleetstream-cab-stats"
	PatternCabStats      = "cab-stats-*"
	TemplateZoneDemand   = "fleetstream-zone-demand"
	PatternZoneDemand    = "zone-demand-*"
	TemplateZoneSupply   = "fleetstream-zone-supply"
	PatternZoneSupply    = "zone-supply-*"
	TemplateRidePickups  = "fleetstream-ride-pickups"
	PatternRidePickups   = "ride-pickups-*"
	TemplateCabAlerts    = "fleetstream-cab-alerts"
	PatternCabAlerts     = "cab-alerts-*"
	TemplateCabTelemetry = "fleetstream-cab-telemetry"
	PatternCabTelemetry  = "cab-telemetry-*"
)

// templatePriority lets the SDK's templates win over broad catch-all templates.
const templatePriority = 200

// templateVersion is bumped whenever a mapping changes (2: ignore_above on the keywords of
// unnamed string fields). EnsureTemplates puts the templates whatever the version installed,
// so a newer SDK replaces an older one's templates at start.
const templateVersion = 2

// dynamicIgnoreAbove is the ignore_above of the keywords that string fields no template
// names are mapped to: a longer value is kept in _source but not indexed. Without it, a
// value over 32,766 bytes (the longest term Lucene takes) made OpenSearch refuse the whole
// document. ignore_above counts characters (Java's, UTF-16 units) where Lucene counts UTF-8
// bytes; 8,191 is the bound OpenSearch's documentation gives for that (32,766 / 4), which
// keeps every value it indexes under Lucene's limit whatever its characters. OpenSearch's
// own dynamic mapping uses 256 for the keyword beside a text field, where the text finds
// longer values; here the keyword is the field's only index, so it keeps what it can.
const dynamicIgnoreAbove = 8191

// Template is a composable index template.
type Template struct {
	Name    string
	Pattern string
	// Body is the JSON for PUT _index_template/<Name>.
	Body []byte
}

// TemplateOption configures the templates.
type TemplateOption interface{ apply(*templateConfig) }

type templateOptionFunc func(*templateConfig)

func (f templateOptionFunc) apply(c *templateConfig) { f(c) }

type templateConfig struct {
	replicas    int
	shards      int
	refresh     string
	telemetry   bool
	dataStreams bool
	errs        []error
}

// WithReplicas sets number_of_replicas (default 1; use 0 on a single node, or the indexes
// stay yellow).
func WithReplicas(n int) TemplateOption {
	return templateOptionFunc(func(c *templateConfig) {
		if n < 0 {
			c.errs = append(c.errs, invalid("WithReplicas", "%d: negative", n))
		}
		c.replicas = n
	})
}

// WithShards sets number_of_shards (default 1: window results are small).
func WithShards(n int) TemplateOption {
	return templateOptionFunc(func(c *templateConfig) {
		if n <= 0 {
			c.errs = append(c.errs, invalid("WithShards", "%d: must be positive", n))
		}
		c.shards = n
	})
}

// WithRefreshInterval sets index.refresh_interval, e.g. "5s" (default: the cluster's).
func WithRefreshInterval(d string) TemplateOption {
	return templateOptionFunc(func(c *templateConfig) { c.refresh = d })
}

// WithRawTelemetry adds the template of the raw telemetry indexes (cab-telemetry-*).
func WithRawTelemetry() TemplateOption {
	return templateOptionFunc(func(c *templateConfig) { c.telemetry = true })
}

// WithAppendOnlyDataStreams makes cab-alerts-* and cab-telemetry-* data streams (write them
// with WithDataStream), timed by the alerts' @timestamp and the telemetry events' ts. Window
// results stay plain indexes, since replays overwrite them.
func WithAppendOnlyDataStreams() TemplateOption {
	return templateOptionFunc(func(c *templateConfig) { c.dataStreams = true })
}

type obj = map[string]any

var (
	keyword  = obj{"type": "keyword"}
	date     = obj{"type": "date"}
	long     = obj{"type": "long"}
	double   = obj{"type": "double"}
	float    = obj{"type": "float"}
	geoPoint = obj{"type": "geo_point"}
)

func cabStatsFields() obj {
	return obj{
		"cab_id": keyword, "window_start": date, "window_end": date, "@timestamp": date,
		"events": long, "distance_km": double, "avg_speed_kmh": double, "max_speed_kmh": double,
		"last_location": geoPoint, "last_status": keyword,
		"fleet": keyword, "vehicle_type": keyword, "driver_id": keyword,
	}
}

func zoneDemandFields() obj {
	return obj{
		"zone": keyword, "window_start": date, "window_end": date,
		"@timestamp": date, "events": long, "cabs": long, "pickups": long,
		"avg_speed_kmh": double, "speed_samples": long, "speed_sum_kmh": double, "location": geoPoint,
	}
}

func zoneSupplyFields() obj {
	return obj{
		"zone": keyword, "window_start": date, "window_end": date, "@timestamp": date,
		"requests": long, "cancelled": long, "available_cabs": long, "supply_demand_ratio": double,
		"location": geoPoint,
	}
}

func ridePickupsFields() obj {
	return obj{
		"request_id": keyword, "cab_id": keyword, "trip_id": keyword, "@timestamp": date,
		"assigned_at": date, "pickup_at": date, "wait_s": double, "distance_m": double, "location": geoPoint,
	}
}

func cabAlertsFields() obj {
	return obj{
		"alert_id": keyword, "type": keyword, "cab_id": keyword, "@timestamp": date,
		"location": geoPoint, "severity": keyword,
		// Every field of the details, so that none is mapped from the first value seen: a
		// limit of 3 would map "limit" as long, and 3.5 later be indexed as 3.
		"details": obj{"type": "object", "dynamic": true, "properties": obj{
			"value": double, "limit": double, "duration_s": double, "fence": keyword,
		}},
	}
}

func cabTelemetryFields() obj {
	return obj{
		"cab_id": keyword, "trip_id": keyword, "ts": date, "@timestamp": date,
		"location": geoPoint, "lat": double, "lon": double,
		"speed_kmh": float, "heading_deg": float, "status": keyword,
		"engine_temp_c": float, "fuel_pct": float, "battery_v": float, "odometer_km": double,
	}
}

// Templates returns the composable index templates of every index the SDK writes.
func Templates(opts ...TemplateOption) ([]Template, error) {
	cfg := templateConfig{replicas: 1, shards: 1}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, cfg.errs[0]
	}
	type spec struct {
		name, pattern string
		fields        obj
		dataStream    bool
		// timeField is the data stream's timestamp field: the field every document of the
		// kind holds its time in.
		timeField string
	}
	specs := []spec{
		{TemplateCabStats, PatternCabStats, cabStatsFields(), false, ""},
		{TemplateZoneDemand, PatternZoneDemand, zoneDemandFields(), false, ""},
		{TemplateZoneSupply, PatternZoneSupply, zoneSupplyFields(), false, ""},
		{TemplateRidePickups, PatternRidePickups, ridePickupsFields(), false, ""},
		{TemplateCabAlerts, PatternCabAlerts, cabAlertsFields(), cfg.dataStreams, "@timestamp"},
	}
	if cfg.telemetry {
		// Telemetry events carry their time in ts (telemetry.Append), not @timestamp, which
		// a data stream's documents must otherwise hold.
		specs = append(specs, spec{TemplateCabTelemetry, PatternCabTelemetry, cabTelemetryFields(), cfg.dataStreams, "ts"})
	}
	out := make([]Template, 0, len(specs))
	for _, sp := range specs {
		settings := obj{"number_of_shards": cfg.shards, "number_of_replicas": cfg.replicas}
		if cfg.refresh != "" {
			settings["refresh_interval"] = cfg.refresh
		}
		body := obj{
			"index_patterns": []string{sp.pattern},
			"priority":       templatePriority,
			"version":        templateVersion,
			"_meta":          obj{"managed_by": "fleetstream"},
			"template": obj{
				"settings": obj{"index": settings},
				"mappings": obj{
					// Unknown string fields become keywords, not analysed text.
					"dynamic_templates": []obj{{"strings_as_keywords": obj{
						"match_mapping_type": "string",
						"mapping":            obj{"type": "keyword", "ignore_above": dynamicIgnoreAbove},
					}}},
					"properties": sp.fields,
				},
			},
		}
		if sp.dataStream {
			body["data_stream"] = obj{"timestamp_field": obj{"name": sp.timeField}}
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("opensearch: template %s: %w", sp.name, err)
		}
		out = append(out, Template{Name: sp.name, Pattern: sp.pattern, Body: b})
	}
	return out, nil
}

// EnsureTemplates installs the SDK's index templates (Templates(opts...)). It is idempotent:
// each PUT replaces the template with the same content, so every instance of a pipeline may
// call it at start; a template an older SDK installed is replaced by this one's. Existing
// indexes keep their mappings; new indexes get the templates.
func (c *Client) EnsureTemplates(ctx context.Context, opts ...TemplateOption) error {
	ts, err := Templates(opts...)
	if err != nil {
		return err
	}
	return c.PutTemplates(ctx, ts...)
}

// PutTemplates installs composable index templates of one's own, for the indexes a pipeline
// writes with its own Mapping (Body: the JSON of PUT _index_template/<Name>, with
// "index_patterns", a "priority" above the cluster's other templates for those patterns, and
// the "template" with its settings and mappings). Like EnsureTemplates it replaces each
// template, so every instance may call it at start, and an answer from something that is not
// OpenSearch fails with ErrNotOpenSearch; a template OpenSearch refuses is an *HTTPError with
// its reason. A Template without a Name or Body fails with ErrInvalidOption, and nothing is
// installed.
//
// A template whose Body has a "version" does not replace one of the same name with a higher
// version: during a rolling upgrade an instance of the older release, restarting, would put
// its older mappings back over the newer release's (EnsureTemplates' carry the SDK's
// version). It is logged and skipped; a template without a version always replaces.
func (c *Client) PutTemplates(ctx context.Context, ts ...Template) error {
	versions := make([]*int64, len(ts))
	for i, t := range ts {
		var v struct {
			Version *int64 `json:"version"`
		}
		if t.Name == "" || len(t.Body) == 0 || json.Unmarshal(t.Body, &v) != nil {
			return invalid(fmt.Sprintf("Template[%d]", i), "a Name and a JSON Body are required (%q)", t.Name)
		}
		versions[i] = v.Version
	}
	for i, t := range ts {
		path := "/_index_template/" + url.PathEscape(t.Name)
		if versions[i] != nil {
			if installed, ok := c.templateVersion(ctx, path, t.Name); ok && installed > *versions[i] {
				c.logger.Warn("opensearch: index template left as it is: a newer version is installed (a newer release of the program runs beside this one)",
					"template", t.Name, "installed_version", installed, "version", *versions[i])
				continue
			}
		}
		r, err := c.doOnAnyNode(ctx, c.logger, "PUT", path, "", t.Body)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if err := c.templateAnswer(t.Name, path, r); err != nil {
			return err
		}
		c.logger.Info("opensearch: index template installed", "template", t.Name, "pattern", t.Pattern)
	}
	return nil
}

// templateVersion returns the version of the index template installed at path, ok false
// when there is none, it has no version, or it cannot be read (PUT then decides: a user
// allowed to put templates but not to read them still installs them).
func (c *Client) templateVersion(ctx context.Context, path, name string) (v int64, ok bool) {
	r, err := c.doOnAnyNode(ctx, c.logger, "GET", path, "", nil)
	if err != nil || r.status != 200 {
		return 0, false
	}
	var got struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				Version *int64 `json:"version"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if json.Unmarshal(r.body, &got) != nil {
		return 0, false
	}
	for _, it := range got.IndexTemplates {
		if it.Name == name && it.IndexTemplate.Version != nil {
			return *it.IndexTemplate.Version, true
		}
	}
	return 0, false
}

// templateAnswer returns the error of the answer r to PUT path, nil when it is OpenSearch's
// acknowledgement. Answers that OpenSearch does not give there (a 404, 405 or 501, a 400 without
// an error type, a 2xx other than its 200 with "acknowledged") come from something else at
// the address and wrap ErrNotOpenSearch; an error status from OpenSearch (a template it
// refuses, bad credentials, a node that is away) is an *HTTPError.
func (c *Client) templateAnswer(name, path string, r response) error {
	op := "put index template " + name
	var why string
	switch {
	case r.status == 200:
		var ack struct {
			Acknowledged *bool `json:"acknowledged"`
		}
		switch {
		case json.Unmarshal(r.body, &ack) != nil || ack.Acknowledged == nil:
			why = "not an acknowledgement"
		case !*ack.Acknowledged:
			// The cluster state holds the template; some node did not confirm it in time.
			c.logger.Warn("opensearch: index template installed, but not every node confirmed it in time", "template", name, "url", c.requestURL(r.node, path))
			return nil
		default:
			return nil
		}
	case r.status > 200 && r.status < 300:
		why = "OpenSearch answers a template it installed with 200"
	case r.status == 404 || r.status == 405 || r.status == 501:
		why = "no index template API at this URL"
	case r.status == 400:
		if typ, _ := requestError(r.status, r.body); typ == "" {
			why = "a refusal of the request, not of the template"
		}
	}
	if why != "" {
		return c.unusable("PUT "+c.requestURL(r.node, path), r, fmt.Errorf("%w: %s", ErrNotOpenSearch, why))
	}
	return c.httpError(op, "PUT", path, r)
}
