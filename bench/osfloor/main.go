// Command osfloor measures how fast the OpenSearch node alone indexes the documents a
// fleetpipeline drain wrote: the floor under the drain's time on the machine it runs on,
// whatever the pipeline does. bench/e2e.sh runs it after the drain and prints its line
// beside the drain's figures.
//
// It reads every document of the indexes matching -from (the drain's, by its -index-tag),
// then, -runs times, creates a copy of each index (its name with "-floor<N>" after it, so
// that the same index templates apply) and bulk-indexes the documents into the copies with
// their ids, -bulk documents a request and -concurrent requests at a time, and deletes the
// copies. Creating the indexes is not timed; the bulks are, from the first request to the
// last response. It prints the fastest run:
//
//	osfloor: 32290 documents in 1.68 s (19247 documents/s; 33 bulks of 1000, 2 at a time, best of 3): a drain of 547304 events that writes them takes at least 1.68 s, 325777 events/s
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type doc struct {
	index, id string
	source    json.RawMessage
}

func main() {
	base := flag.String("opensearch", "http://127.0.0.1:9200", "OpenSearch URL")
	from := flag.String("from", "", "the drain's indexes, an index pattern (e.g. *-bdrain1-*)")
	bulk := flag.Int("bulk", 1000, "documents per bulk request")
	conc := flag.Int("concurrent", 2, "bulk requests at a time")
	runs := flag.Int("runs", 3, "runs; the fastest is printed")
	events := flag.Int64("events", 0, "the drain's events, to print the drain rate the floor allows (0: not printed)")
	flag.Parse()
	if *from == "" || *bulk < 1 || *conc < 1 || *runs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), strings.TrimRight(*base, "/"), *from, *bulk, *conc, *runs, *events); err != nil {
		fmt.Fprintln(os.Stderr, "osfloor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, base, from string, bulk, conc, runs int, events int64) error {
	docs, indexes, err := read(ctx, base, from)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return fmt.Errorf("no documents in %q", from)
	}
	best := time.Duration(0)
	for r := 1; r <= runs; r++ {
		suffix := fmt.Sprintf("-floor%d", r)
		for _, ix := range indexes {
			if err := call(ctx, http.MethodPut, base+"/"+ix+suffix, nil, nil); err != nil {
				return err
			}
		}
		d, err := load(ctx, base, docs, suffix, bulk, conc)
		for _, ix := range indexes {
			if derr := call(ctx, http.MethodDelete, base+"/"+ix+suffix, nil, nil); derr != nil && err == nil {
				err = derr
			}
		}
		if err != nil {
			return err
		}
		if best == 0 || d < best {
			best = d
		}
	}
	s := best.Seconds()
	nb := (len(docs) + bulk - 1) / bulk
	fmt.Printf("osfloor: %d documents in %.2f s (%.0f documents/s; %d bulks of %d, %d at a time, best of %d)",
		len(docs), s, float64(len(docs))/s, nb, bulk, conc, runs)
	if events > 0 {
		fmt.Printf(": a drain of %d events that writes them takes at least %.2f s, %.0f events/s", events, s, float64(events)/s)
	}
	fmt.Println()
	return nil
}

// read returns every document of the indexes matching pattern, and the indexes' names.
func read(ctx context.Context, base, pattern string) ([]doc, []string, error) {
	var cat []struct {
		Index string `json:"index"`
	}
	if err := call(ctx, http.MethodGet, base+"/_cat/indices/"+url.PathEscape(pattern)+"?format=json&h=index", nil, &cat); err != nil {
		return nil, nil, err
	}
	var docs []doc
	var indexes []string
	for _, c := range cat {
		indexes = append(indexes, c.Index)
		type page struct {
			ScrollID string `json:"_scroll_id"`
			Hits     struct {
				Hits []struct {
					ID     string          `json:"_id"`
					Source json.RawMessage `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		var p page
		if err := call(ctx, http.MethodPost, base+"/"+url.PathEscape(c.Index)+"/_search?scroll=1m", map[string]any{"size": 5000, "sort": []string{"_doc"}}, &p); err != nil {
			return nil, nil, err
		}
		for len(p.Hits.Hits) > 0 {
			for _, h := range p.Hits.Hits {
				docs = append(docs, doc{index: c.Index, id: h.ID, source: h.Source})
			}
			id := p.ScrollID
			p = page{}
			if err := call(ctx, http.MethodPost, base+"/_search/scroll", map[string]any{"scroll": "1m", "scroll_id": id}, &p); err != nil {
				return nil, nil, err
			}
		}
		if p.ScrollID != "" {
			_ = call(ctx, http.MethodDelete, base+"/_search/scroll", map[string]any{"scroll_id": p.ScrollID}, nil)
		}
	}
	slices.Sort(indexes)
	return docs, indexes, nil
}

// load bulk-indexes docs into their indexes' copies and returns the time it took.
func load(ctx context.Context, base string, docs []doc, suffix string, bulk, conc int) (time.Duration, error) {
	var bodies [][]byte
	for i := 0; i < len(docs); i += bulk {
		var b bytes.Buffer
		for _, d := range docs[i:min(i+bulk, len(docs))] {
			action, err := json.Marshal(map[string]any{"index": map[string]string{"_index": d.index + suffix, "_id": d.id}})
			if err != nil {
				return 0, err
			}
			b.Write(action)
			b.WriteByte('\n')
			b.Write(d.source)
			b.WriteByte('\n')
		}
		bodies = append(bodies, b.Bytes())
	}
	work := make(chan []byte)
	errs := make(chan error, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for body := range work {
				var resp struct {
					Errors bool `json:"errors"`
				}
				err := call(ctx, http.MethodPost, base+"/_bulk", body, &resp)
				if err == nil && resp.Errors {
					err = errors.New("a bulk request had failed items")
				}
				if err != nil {
					errs <- err
					for range work { // drain, so that the sender ends
					}
					return
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	d := time.Since(start)
	close(errs)
	return d, <-errs
}

// call sends a request with body (bytes as they are, anything else as JSON) and decodes a
// JSON answer into out (when not nil); a status of 300 or more is an error.
func call(ctx context.Context, method, u string, body, out any) error {
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/x-ndjson"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(bufio.NewReader(io.LimitReader(resp.Body, 512)))
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, msg)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
