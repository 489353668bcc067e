package opensearch_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
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

// TestIndexAheadAliasExists: when the next day's name is already an alias (the day's index
// made ahead by an operator's job, with an alias of the daily name), there is nothing to
// create: the creation ahead counts it as existing, as it does an index, instead of logging a
// Warn and asking again every minute until midnight ("already exists as alias", 400
// invalid_index_name_exception).
func TestIndexAheadAliasExists(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	next := prefix + "-" + day.AddDate(0, 0, 1).Format("2006.01.02")
	n.must(t, "PUT", "/"+prefix+"-backing-000001", `{"aliases":{"`+next+`":{"is_write_index":true}}}`)
	logs := &syncbuf.Buffer{}
	s, err := opensearch.NewSink(n.client, statsMapping(prefix), opensearch.WithIndexAhead(time.Hour), opensearch.WithLogger(textLogger(logs)))
	require.NoError(t, err)
	now := day.Add(23 * time.Hour)
	var clock sync.Mutex
	opensearch.SetAheadClock(s, func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	require.NoError(t, s.Write(t.Context(), stats(0, 10)))
	opensearch.WaitAhead(s)
	clock.Lock()
	now = now.Add(2 * time.Minute)
	clock.Unlock()
	require.NoError(t, s.Write(t.Context(), stats(0, 10)))
	require.NoError(t, s.Close(t.Context()))
	require.NotContains(t, logs.String(), "could not create", "%s", logs.String())
	var aliases map[string]any
	require.NoError(t, json.Unmarshal(n.must(t, "GET", "/_alias/"+next, ""), &aliases))
	require.Equal(t, []string{prefix + "-backing-000001"}, slices.Collect(maps.Keys(aliases)), "the alias is left alone")
}

// aheadNode serves bulk requests (every document created) and answers each PUT with put.
func aheadNode(t *testing.T, put http.HandlerFunc) *opensearch.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == "PUT":
			put(w, r)
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
	return c
}

// answer writes an OpenSearch error of type typ with status.
func answer(w http.ResponseWriter, status int, typ string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"root_cause":[{"type":%[1]q,"reason":"r"}],"type":%[1]q,"reason":"r"},"status":%[2]d}`, typ, status)
}

// TestIndexAheadRefused: a creation ahead that OpenSearch refuses does not fail the write (the
// first bulk request into the index creates it, as without the option) and is logged on the
// sink's logger; a write within a minute does not try again, one after it does. An index
// that exists already counts as created. Close ends a creation under way. With op type
// create the option is refused.
func TestIndexAheadRefused(t *testing.T) {
	var (
		mu     sync.Mutex
		puts   []string
		status = 403
	)
	c := aheadNode(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		puts = append(puts, r.URL.Path)
		st := status
		mu.Unlock()
		if st == 403 {
			answer(w, 403, "security_exception")
		} else {
			answer(w, 400, "resource_already_exists_exception")
		}
	})
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logged.Write(p)
	}), nil))

	s, err := opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(time.Hour), opensearch.WithLogger(log))
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
	logMu.Lock()
	require.Contains(t, logged.String(), "could not create the next day's index ahead", "on the sink's logger")
	logMu.Unlock()
	at(23*time.Hour + 59*time.Second)
	write()
	require.Equal(t, 1, put(), "not again within a minute of the refusal")
	mu.Lock()
	status = 400 // created meanwhile by someone else
	mu.Unlock()
	at(23*time.Hour + 60*time.Second)
	write()
	require.Equal(t, 2, put(), "again a minute after it")
	at(23*time.Hour + 5*time.Minute)
	write()
	require.Equal(t, 2, put(), "an index that exists already is not created again")
	require.NoError(t, s.Close(t.Context()))

	_, err = opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(time.Hour), opensearch.WithDataStream())
	require.ErrorIs(t, err, opensearch.ErrInvalidOption)
	require.ErrorContains(t, err, "WithIndexAhead")
	_, err = opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(0))
	require.ErrorIs(t, err, opensearch.ErrInvalidOption)
}

// TestIndexAheadClose: Close ends a creation that OpenSearch has not answered yet and waits
// for it; a write after Close starts none.
func TestIndexAheadClose(t *testing.T) {
	entered := make(chan struct{}, 1)
	c := aheadNode(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done() // never answers; the client gives up when Close cancels
	})
	s, err := opensearch.NewSink(c, statsMapping("cab-stats-x"), opensearch.WithIndexAhead(time.Hour))
	require.NoError(t, err)
	opensearch.SetAheadClock(s, func() time.Time { return day.Add(23 * time.Hour) })
	require.NoError(t, s.Write(t.Context(), stats(0, 10)))
	<-entered
	require.NoError(t, s.Close(t.Context())) // returns: the PUT was cancelled and waited for
	require.ErrorIs(t, s.Write(t.Context(), stats(0, 10)), opensearch.ErrClosed)
	require.Empty(t, entered, "no creation after Close")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

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
