package opensearch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// cabStats is a per-cab window result, as the telemetry transforms emit it.
type cabStats struct {
	CabID       string    `json:"cab_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Events      int64     `json:"events"`
	DistanceKm  float64   `json:"distance_km"`
	AvgSpeed    float64   `json:"avg_speed_kmh"`
	MaxSpeed    float64   `json:"max_speed_kmh"`
	Lat, Lon    float64
	LastStatus  string `json:"last_status"`
	// Bad makes the document violate the mapping (a string in distance_km).
	Bad bool `json:"-"`
}

var day = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// stats returns n distinct window results from index from: 500 cabs, one-minute windows
// over two UTC days.
func stats(from, n int) []cabStats {
	out := make([]cabStats, n)
	for i := range out {
		k := from + i
		start := day.Add(time.Duration(k/500) * time.Minute)
		out[i] = cabStats{
			CabID:       fmt.Sprintf("CAB-%04d", k%500),
			WindowStart: start,
			WindowEnd:   start.Add(time.Minute),
			Events:      int64(10 + k%50),
			DistanceKm:  float64(k%1000) / 100,
			AvgSpeed:    float64(k%90) + 0.5,
			MaxSpeed:    float64(k%120) + 0.25,
			Lat:         41.15 + float64(k%100)/1000,
			Lon:         -8.62 - float64(k%100)/1000,
			LastStatus:  []string{"available", "hired", "offline"}[k%3],
		}
	}
	return out
}

// appendCabStats is a hand-written appender: about 300 bytes per document, no allocation.
func appendCabStats(b []byte, v cabStats) ([]byte, error) {
	b = append(b, `{"cab_id":"`...)
	b = append(b, v.CabID...)
	b = append(b, `","window_start":"`...)
	b = v.WindowStart.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","window_end":"`...)
	b = v.WindowEnd.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","@timestamp":"`...)
	b = v.WindowStart.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","events":`...)
	b = strconv.AppendInt(b, v.Events, 10)
	b = append(b, `,"distance_km":`...)
	if v.Bad {
		b = append(b, `"not a number"`...)
	} else {
		b = strconv.AppendFloat(b, v.DistanceKm, 'f', -1, 64)
	}
	b = append(b, `,"avg_speed_kmh":`...)
	b = strconv.AppendFloat(b, v.AvgSpeed, 'f', -1, 64)
	b = append(b, `,"max_speed_kmh":`...)
	b = strconv.AppendFloat(b, v.MaxSpeed, 'f', -1, 64)
	b = append(b, `,"last_location":{"lat":`...)
	b = strconv.AppendFloat(b, v.Lat, 'f', -1, 64)
	b = append(b, `,"lon":`...)
	b = strconv.AppendFloat(b, v.Lon, 'f', -1, 64)
	b = append(b, `},"last_status":"`...)
	b = append(b, v.LastStatus...)
	b = append(b, `","pipeline":"cab-stats","window":"1m","final":true}`...)
	return b, nil
}

func statsID(v cabStats) string {
	return opensearch.WindowID("cab-stats", v.CabID, v.WindowStart, v.WindowEnd)
}

// statsMapping writes into daily indexes prefix-YYYY.MM.DD.
func statsMapping(prefix string) opensearch.Mapping[cabStats] {
	return opensearch.Mapping[cabStats]{
		Index: opensearch.DailyIndex(prefix, func(v cabStats) time.Time { return v.WindowStart }),
		ID:    statsID,
		Body:  appendCabStats,
	}
}

// node is the real OpenSearch node of testenv.
type node struct {
	url    string
	client *opensearch.Client
}

func newNode(t testing.TB) *node {
	t.Helper()
	u := testenv.OpenSearchURL(t)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{u}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.EnsureTemplates(t.Context(), opensearch.WithReplicas(0)))
	return &node{url: u, client: c}
}

// newPrefix returns a unique cab-stats-* prefix and deletes its indexes after the test.
func (n *node) newPrefix(t testing.TB) string {
	t.Helper()
	return n.newPrefixOf(t, "cab-stats")
}

// newPrefixOf returns a unique prefix starting with base and deletes its indexes after the
// test.
func (n *node) newPrefixOf(t testing.TB, base string) string {
	t.Helper()
	p := testenv.UniqueName(t, base)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "DELETE", "/"+p+"-*", "")
	})
	return p
}

// noAutoCreate sets the node's action.auto_create_index to "-nocreate-*,+*" until the test
// ends: only names starting with nocreate- are kept from being created by writes, so the
// other tests sharing the node create theirs as before.
func (n *node) noAutoCreate(t testing.TB) {
	t.Helper()
	n.must(t, "PUT", "/_cluster/settings", `{"persistent":{"action.auto_create_index":"-nocreate-*,+*"}}`)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "PUT", "/_cluster/settings", `{"persistent":{"action.auto_create_index":null}}`)
	})
}

// clientWith returns a client of the real node and of other, a node address of the test's,
// other's address first if otherFirst, with the request timeout timeout.
func (n *node) clientWith(t testing.TB, other string, otherFirst bool, timeout time.Duration) *opensearch.Client {
	t.Helper()
	addrs := []string{other, n.url}
	if !otherFirst {
		slices.Reverse(addrs)
	}
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: addrs, RequestTimeout: timeout})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// unavailableNode serves a node cut off from its cluster: every request is answered 503
// with OpenSearch's no cluster-manager block. It returns the node's URL and a func that
// returns the request lines it got so far ("PUT /index HTTP/1.1").
func unavailableNode(t testing.TB) (string, func() []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		lines []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		lines = append(lines, r.Method+" "+r.URL.RequestURI()+" "+r.Proto)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];"}],`+
			`"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];"},"status":503}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(lines) }
}

// requestLines returns the first lines of the requests sent on the connections accepted has
// received so far (a SilentListener's, whose clients have given up: what they sent is there
// to read, then EOF).
func requestLines(t testing.TB, accepted <-chan net.Conn) []string {
	t.Helper()
	var lines []string
	for {
		select {
		case conn := <-accepted:
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
			line, err := bufio.NewReader(conn).ReadString('\n')
			require.NoError(t, err)
			lines = append(lines, strings.TrimSpace(line))
		default:
			return lines
		}
	}
}

func (n *node) call(ctx context.Context, method, path, body string) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 300 {
		return b, fmt.Errorf("%s %s: %d: %s", method, path, res.StatusCode, b)
	}
	return b, nil
}

func (n *node) must(t testing.TB, method, path, body string) []byte {
	t.Helper()
	b, err := n.call(t.Context(), method, path, body)
	require.NoError(t, err)
	return b
}

// count refreshes the indexes of pattern and returns how many documents they hold.
func (n *node) count(t testing.TB, pattern string) int {
	t.Helper()
	n.must(t, "POST", "/"+pattern+"/_refresh?allow_no_indices=true", "")
	var r struct {
		Count int `json:"count"`
	}
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/"+pattern+"/_count?allow_no_indices=true", ""), &r))
	return r.Count
}

// distinctIDs returns the number of distinct _id values of pattern (a cardinality that is
// exact below its precision threshold).
func (n *node) version(t testing.TB, index, id string) int {
	t.Helper()
	var r struct {
		Version int `json:"_version"`
	}
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/"+index+"/_doc/"+id, ""), &r))
	return r.Version
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// ids returns the _id of every document of pattern (at most 10,000).
func (n *node) ids(t testing.TB, pattern string) []string {
	t.Helper()
	n.must(t, "POST", "/"+pattern+"/_refresh?allow_no_indices=true", "")
	var r struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	b := n.must(t, "GET", "/"+pattern+"/_search?allow_no_indices=true&size=10000&_source=false", "")
	require.NoError(t, json.Unmarshal(b, &r))
	out := make([]string, 0, len(r.Hits.Hits))
	for _, h := range r.Hits.Hits {
		out = append(out, h.ID)
	}
	return out
}
