// Command fleetreport prints a summary of what the fleet pipeline wrote, read back from
// OpenSearch: documents per index, the five busiest zones, alerts by type and the five
// fastest cabs. `make demo` runs it last.
//
//	go run ./examples/fleetreport [-index-tag TAG]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/fleetstream/fleetstream/examples/internal/cli"
	"github.com/fleetstream/fleetstream/opensearch"
)

func main() {
	fs := flag.NewFlagSet("fleetreport", flag.ExitOnError)
	of := cli.OpenSearchFlags(fs, cli.KafkaFlags(fs))
	tag := fs.String("index-tag", "", "the fleet pipeline's -index-tag")
	_ = fs.Parse(os.Args[1:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := of.Config()
	if err == nil {
		err = report(ctx, cfg, *tag, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetreport:", err)
		os.Exit(1)
	}
}

func pattern(base, tag string) string {
	if tag == "" {
		return base + "-*"
	}
	return base + "-" + tag + "-*"
}

func report(ctx context.Context, cfg opensearch.Config, tag string, w io.Writer) error {
	c, err := opensearch.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	api := c.API()
	if _, err := api.Indices.Refresh(ctx, &opensearchapi.IndicesRefreshReq{Params: opensearchapi.IndicesRefreshParams{AllowNoIndices: yes(), IgnoreUnavailable: yes()}, Index: []string{pattern("cab-stats", tag), pattern("zone-demand", tag), pattern("cab-alerts", tag)}}); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	fmt.Fprintln(w, "== fleetstream demo summary ==")
	fmt.Fprintln(w, "documents per index:")
	for _, base := range []string{"cab-stats", "zone-demand", "cab-alerts"} {
		var r struct {
			Hits struct {
				Total struct{ Value int64 } `json:"total"`
			} `json:"hits"`
		}
		if err := search(ctx, api, pattern(base, tag), `{"size":0,"track_total_hits":true}`, &r); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-14s %d\n", pattern(base, tag), r.Hits.Total.Value)
	}
	type bucket struct {
		Key      string                  `json:"key"`
		DocCount int64                   `json:"doc_count"`
		V        struct{ Value float64 } `json:"v"`
	}
	var aggs struct {
		Aggregations struct {
			Top struct{ Buckets []bucket } `json:"top"`
		} `json:"aggregations"`
	}
	sections := []struct {
		title, index, query, unit string
	}{
		{"five busiest zones (events):", "zone-demand",
			`{"size":0,"aggs":{"top":{"terms":{"field":"zone","size":5,"order":{"v":"desc"}},"aggs":{"v":{"sum":{"field":"events"}}}}}}`, "events"},
		{"alerts by type:", "cab-alerts", `{"size":0,"aggs":{"top":{"terms":{"field":"type","size":10}}}}`, ""},
		{"five fastest cabs (max speed over all windows):", "cab-stats",
			`{"size":0,"aggs":{"top":{"terms":{"field":"cab_id","size":5,"order":{"v":"desc"}},"aggs":{"v":{"max":{"field":"max_speed_kmh"}}}}}}`, "km/h"},
	}
	for _, s := range sections {
		if err := search(ctx, api, pattern(s.index, tag), s.query, &aggs); err != nil {
			return err
		}
		fmt.Fprintln(w, s.title)
		if len(aggs.Aggregations.Top.Buckets) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		for _, b := range aggs.Aggregations.Top.Buckets {
			if s.unit == "" {
				fmt.Fprintf(w, "  %-24s %d\n", b.Key, b.DocCount)
			} else {
				fmt.Fprintf(w, "  %-24s %.1f %s\n", b.Key, b.V.Value, s.unit)
			}
		}
	}
	return nil
}

func yes() *bool { t := true; return &t }

func search(ctx context.Context, api *opensearchapi.Client, index, body string, into any) error {
	resp, err := api.Search(ctx, &opensearchapi.SearchReq{
		Indices: []string{index},
		Body:    strings.NewReader(body),
		Params:  opensearchapi.SearchParams{IgnoreUnavailable: yes(), AllowNoIndices: yes()},
	})
	if err != nil {
		return fmt.Errorf("search %s: %w", index, err)
	}
	defer resp.Inspect().Response.Body.Close()
	raw, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}
