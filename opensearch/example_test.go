package opensearch_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// CabStats is a per-cab window result.
type CabStats struct {
	CabID       string    `json:"cab_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Timestamp   time.Time `json:"@timestamp"`
	Events      int64     `json:"events"`
	DistanceKm  float64   `json:"distance_km"`
}

// Write window results to daily cab-stats indexes with IDs that make replays overwrite, and
// rejected documents to a file.
func Example() {
	ctx := context.Background()
	client, err := opensearch.NewClient(ctx, opensearch.Config{
		Addresses:  []string{"https://search.example.com:9200"},
		Username:   "fleet",
		Password:   os.Getenv("OPENSEARCH_PASSWORD"),
		CACertFile: "/etc/fleet/opensearch-ca.pem",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.EnsureTemplates(ctx, opensearch.WithReplicas(1)); err != nil {
		log.Fatal(err)
	}
	dead, err := opensearch.OpenJSONLinesFile("rejected.jsonl")
	if err != nil {
		log.Fatal(err)
	}
	defer dead.Close()

	sink, err := opensearch.NewSink(client, opensearch.Mapping[CabStats]{
		Index: opensearch.DailyIndex("cab-stats", func(s CabStats) time.Time { return s.WindowStart }),
		ID: func(s CabStats) string {
			return opensearch.WindowID("cab-stats", s.CabID, s.WindowStart, s.WindowEnd)
		},
	}, opensearch.WithDeadLetter(dead))
	if err != nil {
		log.Fatal(err)
	}

	var results *stream.Stream[CabStats] // from the pipeline's window operators
	if results != nil {
		stream.To(results, sink)
	}
}

// Sign requests with SigV4 for OpenSearch Serverless, with credentials from the default
// chain (environment, shared config, instance or task role).
func ExampleNewClient_serverless() {
	client, err := opensearch.NewClient(context.Background(), opensearch.Config{
		Addresses: []string{"https://abc123.eu-west-1.aoss.amazonaws.com"},
		AWS:       &opensearch.AWSAuth{Region: "eu-west-1", Service: opensearch.ServiceServerless},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}

func ExampleWindowID() {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fmt.Println(opensearch.WindowID("cab-stats", "CAB-0042", start, start.Add(time.Minute)))
	fmt.Println(opensearch.DailyIndex("cab-stats", func(t time.Time) time.Time { return t })(start))
	// Output:
	// e23b4fc111086ed7c676ab4d9e1dc889
	// cab-stats-2026.11.25
}

// A program checks a fixed index name, or a daily prefix made into a whole name, at its
// start: OpenSearch refuses every document for a name that breaks its rules.
func ExampleCheckIndexName() {
	for _, prefix := range []string{"cab-stats-run1", "Cab-Stats"} {
		if err := opensearch.CheckIndexName(prefix + "-2026.11.25"); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(prefix, "ok")
	}
	// Output:
	// cab-stats-run1 ok
	// opensearch: index name "Cab-Stats-2026.11.25" must be lower case (OpenSearch's index names: lower case; not "." or ".."; none of \ / * ? " < > | , # : or a space; not starting with _, - or +; at most 255 bytes)
}
