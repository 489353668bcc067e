package opensearch_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
)

// TestIndexAhead: with WithIndexAhead, a write into a day's index in the last lead of that day
// creates the next day's index, with the mappings of the templates that match it; a write
// earlier in the day, or into the index of a day long past (a backfill), creates none.
func TestIndexAhead(t *testing.T) {
	n := newNode(t)
	for _, tc := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"last hour of the day", day.Add(23*time.Hour + 30*time.Minute), true},
		{"earlier in the day", day.Add(12 * time.Hour), false},
		{"a day long past", day.AddDate(0, 1, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := n.newPrefix(t)
			s, err := opensearch.NewSink(n.client, statsMapping(prefix), opensearch.WithIndexAhead(time.Hour))
			require.NoError(t, err)
			opensearch.SetAheadClock(s, func() time.Time { return tc.now })
			require.NoError(t, s.Write(t.Context(), stats(0, 100))) // all of day's first minute
			require.NoError(t, s.Close(t.Context()))                // waits for the creation

			next := prefix + "-" + day.AddDate(0, 0, 1).Format("2006.01.02")
			_, err = n.call(t.Context(), "GET", "/"+next+"/_mapping", "")
			if !tc.want {
				require.ErrorContains(t, err, "404", "%s must not exist", next)
				return
			}
			require.NoError(t, err, "%s created ahead", next)
			mapping := string(n.must(t, "GET", "/"+next+"/_mapping", ""))
			require.Contains(t, mapping, `"distance_km":{"type":"double"}`, "the template's mappings")
			require.Equal(t, 0, n.count(t, next), "created empty")
			require.Equal(t, 100, n.count(t, prefix+"-"+day.Format("2006.01.02")))
		})
	}
}

// TestIndexAheadRefused: a creation ahead that OpenSearch refuses does not fail the write (the
// first bulk request into the index creates it, as without the option); a write within a
// minute does not try again, one after it does. With WithDataStream the option is refused.
func TestIndexAheadRefused(t *testing.T) {
	var (
		mu   sync.Mutex
		puts []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == "PUT":
			mu.Lock()
			puts = append(puts, r.URL.Path)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			fmt.Fprint(w, `{"error":{"root_cause":[{"type":"security_exception","reason":"no permissions for [indices:admin/create]"}],"type":"security_exception","reason":"no permissions for [indices:admin/create]"},"status":403}`)
		case r.URL.Path == "/_bulk":
			docs := bytes.Count(body, []byte("\n")) / 2
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.TrimSuffix(strings.Repeat(`{"index":{"status":201,"result":"created"}},`, docs), ","))
		default:
			w.WriteHeader(200)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	s, err := opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(time.Hour))
	require.NoError(t, err)
	now := day.Add(23 * time.Hour)
	var clock sync.Mutex
	opensearch.SetAheadClock(s, func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	at := func(d time.Duration) { clock.Lock(); now = day.Add(d); clock.Unlock() }
	put := func() int { mu.Lock(); defer mu.Unlock(); return len(puts) }
	write := func() {
		t.Helper()
		require.NoError(t, s.Write(t.Context(), stats(0, 10)), "a refused creation does not fail the write")
		opensearch.WaitAhead(s) // the creation runs in the background
	}

	write()
	require.Equal(t, []string{"/cab-stats-x-2026.11.26"}, puts)
	at(23*time.Hour + 59*time.Second)
	write()
	require.Equal(t, 1, put(), "not again within a minute of the refusal")
	at(23*time.Hour + 60*time.Second)
	write()
	require.Equal(t, 2, put(), "again a minute after it")
	require.NoError(t, s.Close(t.Context()))

	_, err = opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(time.Hour), opensearch.WithDataStream())
	require.ErrorIs(t, err, opensearch.ErrInvalidOption)
	require.ErrorContains(t, err, "WithIndexAhead")
	_, err = opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(0))
	require.ErrorIs(t, err, opensearch.ErrInvalidOption)
}

// BenchmarkFirstWriteOfDay: the first Write into a day's index (50 documents), the index
// created by that bulk request (as without WithIndexAhead) or ahead of the day by a write the
// evening before. Against the real node; run with -benchtime=20x.
func BenchmarkFirstWriteOfDay(b *testing.B) {
	n := newNode(b)
	base := n.newPrefix(b) // its cleanup deletes every iteration's indexes
	evening := []cabStats{{CabID: "CAB-0000", WindowStart: day.Add(-time.Minute), WindowEnd: day, LastStatus: "hired"}}
	docs := stats(0, 50)
	for _, ahead := range []bool{false, true} {
		name := "on first bulk"
		if ahead {
			name = "created ahead"
		}
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				s, err := opensearch.NewSink(n.client, statsMapping(fmt.Sprintf("%s-%s-%d", base, map[bool]string{false: "f", true: "a"}[ahead], i)), opensearch.WithIndexAhead(time.Hour))
				require.NoError(b, err)
				if ahead {
					opensearch.SetAheadClock(s, func() time.Time { return day.Add(-30 * time.Minute) })
					require.NoError(b, s.Write(b.Context(), evening))
					opensearch.WaitAhead(s)
				}
				opensearch.SetAheadClock(s, func() time.Time { return day.Add(time.Hour) }) // creates nothing more
				b.StartTimer()
				require.NoError(b, s.Write(b.Context(), docs))
			}
		})
	}
}
