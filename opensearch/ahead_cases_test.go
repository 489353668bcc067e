package opensearch_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestIndexAheadAutoCreateIndex, on the real node: the creation ahead creates only what the
// first bulk request into the index would, so it honours action.auto_create_index, which
// governs creation by writes but not PUT /<index>. A name the setting keeps from being
// created automatically is not created ahead: that is said once, at Info, and the day's
// writes go on as without the option. A name the setting lets OpenSearch create is created
// ahead as before. Before, the sink created every next day's index with PUT, whatever the
// setting said.
func TestIndexAheadAutoCreateIndex(t *testing.T) {
	n := newNode(t)
	n.noAutoCreate(t)
	refused := n.newPrefixOf(t, "nocreate")
	allowed := n.newPrefix(t)
	today, tomorrow := day.Format("2006.01.02"), day.AddDate(0, 0, 1).Format("2006.01.02")
	// Today's index of the refused name is made by an operator's job, as such a cluster
	// needs.
	n.must(t, "PUT", "/"+refused+"-"+today, `{"settings":{"number_of_replicas":0}}`)

	for _, tc := range []struct {
		prefix string
		want   bool
	}{{refused, false}, {allowed, true}} {
		t.Run(map[bool]string{false: "refused by the setting", true: "allowed by the setting"}[tc.want], func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			s, err := opensearch.NewSink(n.client, statsMapping(tc.prefix), opensearch.WithIndexAhead(time.Hour), opensearch.WithLogger(textLogger(logs)))
			require.NoError(t, err)
			now := day.Add(23 * time.Hour)
			var clock sync.Mutex
			opensearch.SetAheadClock(s, func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
			require.NoError(t, s.Write(t.Context(), stats(0, 10)))
			opensearch.WaitAhead(s)
			clock.Lock()
			now = now.Add(2 * time.Minute) // past the minute a creation waits to be tried again
			clock.Unlock()
			require.NoError(t, s.Write(t.Context(), stats(0, 10)))
			require.NoError(t, s.Close(t.Context()))
			require.Equal(t, 10, n.count(t, tc.prefix+"-"+today))

			_, err = n.call(t.Context(), "GET", "/"+tc.prefix+"-"+tomorrow, "")
			if tc.want {
				require.NoError(t, err, "created ahead")
				return
			}
			require.ErrorContains(t, err, "404", "not created ahead")
			require.NotContains(t, logs.String(), "level=WARN", "%s", logs.String())
			require.Equal(t, 1, strings.Count(logs.String(), "not created ahead: action.auto_create_index"), "said once: %s", logs.String())
			require.Contains(t, logs.String(), "-nocreate-*,+*", "the setting's value")
		})
	}
}

// TestIndexAheadDataStreamTemplate, on the real node: a next day's name that an index
// template makes a data stream of is none of the creation ahead's business (OpenSearch
// refuses PUT /<name>: "use create data stream api instead", and the first write creates
// the data stream). The sink logs no Warn for it and does not ask again every minute; the
// Write itself says what is wrong (a data stream written with op type index). Before, each
// minute's try logged "could not create the next day's index ahead; the first bulk request
// into it will".
func TestIndexAheadDataStreamTemplate(t *testing.T) {
	n := newNode(t)
	name := testenv.UniqueName(t, "ahead-ds")
	n.must(t, "PUT", "/_index_template/"+name, `{"index_patterns":["`+name+`-*"],"priority":500,"data_stream":{},
		"template":{"settings":{"number_of_replicas":0}}}`)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = n.call(ctx, "DELETE", "/_data_stream/"+name+"-*", "")
		_, _ = n.call(ctx, "DELETE", "/_index_template/"+name, "")
	})
	logs := &syncbuf.Buffer{}
	s, err := opensearch.NewSink(n.client, statsMapping(name), opensearch.WithIndexAhead(time.Hour),
		opensearch.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	now := day.Add(23 * time.Hour)
	var clock sync.Mutex
	opensearch.SetAheadClock(s, func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	for range 2 {
		require.ErrorContains(t, s.Write(t.Context(), stats(0, 10)), "WithDataStream", "the write says what is wrong")
		opensearch.WaitAhead(s)
		clock.Lock()
		now = now.Add(2 * time.Minute)
		clock.Unlock()
	}
	require.NoError(t, s.Close(t.Context()))
	require.NotContains(t, logs.String(), "could not create", "%s", logs.String())
	require.Equal(t, 1, strings.Count(logs.String(), "data stream"), "asked once: %s", logs.String())
}

// TestIndexAheadNotADay: an index name that does not end in a day's date as DailyIndex
// writes it (a monthly prefix-2026.11, which may as well be ISO week 11; a weekly
// prefix-2026.w48; a fixed name) has no next day the sink can predict, so nothing is
// created ahead for it, and the first write into one says so, once per sink, at Warn. A
// daily name of the same sink is still created ahead. Before, such names were skipped
// without a word.
func TestIndexAheadNotADay(t *testing.T) {
	var (
		mu   sync.Mutex
		puts []string
	)
	c := aheadNode(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		puts = append(puts, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"acknowledged":true}`)
	})
	logs := &syncbuf.Buffer{}
	names := []string{"cab-stats-m-2026.11", "cab-stats-w-2026.w48", "cab-stats-fixed", "cab-stats-d-2026.11.25"}
	s, err := opensearch.NewSink(c, opensearch.Mapping[cabStats]{
		Index: func(v cabStats) string { return names[v.Events%4] },
		ID:    statsID, Body: appendCabStats,
	}, opensearch.WithIndexAhead(time.Hour), opensearch.WithLogger(textLogger(logs)))
	require.NoError(t, err)
	opensearch.SetAheadClock(s, func() time.Time { return day.Add(23 * time.Hour) })
	for range 2 {
		require.NoError(t, s.Write(t.Context(), stats(0, 8)))
		opensearch.WaitAhead(s)
	}
	require.NoError(t, s.Close(t.Context()))
	require.Equal(t, []string{"/cab-stats-d-2026.11.26"}, puts)
	require.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "once: %s", logs.String())
	require.Contains(t, logs.String(), "prefix-2006.01.02")
	require.Contains(t, logs.String(), "cab-stats-fixed", "names the first such index")
}

// handlerTransport serves requests with a handler, without a network.
type handlerTransport struct{ h http.HandlerFunc }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h(w, req)
	res := w.Result()
	res.Request = req
	return res, nil
}

// TestIndexAheadBounded: the next day's indexes of many tenants (here 2 sinks of 10 daily
// indexes each, on one Client) are created two at a time, not all at once. OpenSearch's
// cluster manager creates indexes one after another anyway, and a burst queues everything
// else that needs it behind them: on the testenv node, a bulk request into a new index
// waited 12.3 s behind 200 PUTs sent at once, and 0.2 s behind 200 sent two at a time, which
// took no longer in all (12.2 s against 15.5 s). Before, each index had its PUT in flight at
// the same moment.
func TestIndexAheadBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var (
			mu                  sync.Mutex
			inFlight, most, put int
		)
		c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://node.example:9200"},
			Transport: handlerTransport{func(w http.ResponseWriter, r *http.Request) {
				var body []byte
				if r.Body != nil {
					body, _ = io.ReadAll(r.Body)
				}
				w.Header().Set("Content-Type", "application/json")
				switch {
				case r.Method == "PUT":
					mu.Lock()
					inFlight++
					put++
					most = max(most, inFlight)
					mu.Unlock()
					select {
					case <-gate:
					case <-r.Context().Done(): // Close, after a failure
					}
					mu.Lock()
					inFlight--
					mu.Unlock()
					_, _ = io.WriteString(w, `{"acknowledged":true}`)
				case r.URL.Path == "/_bulk":
					docs := strings.Count(string(body), "\n") / 2
					fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.TrimSuffix(strings.Repeat(`{"index":{"status":201,"result":"created"}},`, docs), ","))
				default:
					_, _ = io.WriteString(w, `{}`)
				}
			}}})
		require.NoError(t, err)
		defer func() { _ = c.Close() }()
		var sinks []*opensearch.Sink[cabStats]
		for i := range 2 {
			s, err := opensearch.NewSink(c, opensearch.Mapping[cabStats]{
				Index: func(v cabStats) string {
					return fmt.Sprintf("s%d-%s-%s", i, strings.ToLower(v.CabID), v.WindowStart.Format("2006.01.02"))
				},
				ID: statsID, Body: appendCabStats,
			}, opensearch.WithIndexAhead(time.Hour))
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			opensearch.SetAheadClock(s, func() time.Time { return day.Add(23 * time.Hour) })
			require.NoError(t, s.Write(t.Context(), stats(0, 10))) // 10 tenants
			sinks = append(sinks, s)
		}
		for done := 0; done < 20; done++ {
			synctest.Wait() // every creation that may start has started
			mu.Lock()
			now := inFlight
			mu.Unlock()
			require.Equal(t, min(2, 20-done), now, "in flight after %d answered", done)
			gate <- struct{}{}
		}
		for _, s := range sinks {
			require.NoError(t, s.Close(t.Context()))
		}
		require.Equal(t, 20, put)
		require.Equal(t, 2, most)
	})
}

// TestIndexAheadPassesOverBadNode, on the real node and a node that gives no usable answer:
// the creation ahead's two requests, GET _cluster/settings and PUT /<index>, go to the next
// address when a node takes the connection and never answers, or answers 503 (a node cut off
// from its cluster: no cluster-manager), as template requests do. Before, each went to one
// node only: where the GET met the bad node, the setting was not read (after a request
// timeout) and an index that action.auto_create_index forbids was created; where the PUT met
// it, tomorrow's index was not created. opensearch-go shuffles the addresses, so the order
// in Config does not say which node a client asks first: each case takes fresh clients, with
// the bad node first and last in Config, until the bad node got the request of the case.
func TestIndexAheadPassesOverBadNode(t *testing.T) {
	n := newNode(t)
	n.noAutoCreate(t)
	const timeout = time.Second
	tomorrow := day.AddDate(0, 0, 1).Format("2006.01.02")
	for _, bad := range []string{"silent", "answering 503"} {
		for _, tc := range []struct {
			request string // what the bad node must get
			allowed bool   // whether the setting lets the name be created
		}{{"GET /_cluster/settings", false}, {"PUT /", true}} {
			t.Run(fmt.Sprintf("%s node gets %s", bad, tc.request), func(t *testing.T) {
				for try := 0; ; try++ {
					require.Less(t, try, 20, "the bad node never got %s", tc.request)
					var (
						addr string
						got  func() []string // the request lines the bad node got
					)
					if bad == "silent" {
						silent, accepted := testenv.SilentListener(t)
						addr, got = "http://"+silent, func() []string { return requestLines(t, accepted) }
					} else {
						addr, got = unavailableNode(t)
					}
					n.createAheadWith(t, addr, try%2 == 0, timeout, tc.allowed, tomorrow)
					if slices.ContainsFunc(got(), func(l string) bool { return strings.HasPrefix(l, tc.request) }) {
						return
					}
				}
			})
		}
	}
}

// createAheadWith creates tomorrow's index of a new prefix ahead with a client of the real
// node and of addr (first if addrFirst), allowed or forbidden by the node's
// action.auto_create_index (noAutoCreate), checks that one timeout at most passed, that the
// index exists if allowed and else not (said at Info).
func (n *node) createAheadWith(t *testing.T, addr string, addrFirst bool, timeout time.Duration, allowed bool, tomorrow string) {
	t.Helper()
	prefix := n.newPrefixOf(t, map[bool]string{true: "cab-stats", false: "nocreate"}[allowed])
	next := prefix + "-" + tomorrow
	logs := &syncbuf.Buffer{}
	s, err := opensearch.NewSink(n.clientWith(t, addr, addrFirst, timeout), statsMapping(prefix), opensearch.WithIndexAhead(time.Hour),
		opensearch.WithLogger(textLogger(logs)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	start := time.Now()
	require.True(t, opensearch.CreateAhead(s, next), "nothing left to do: %s", logs.String())
	require.Less(t, time.Since(start), 2*timeout, "at most one timeout (%v)", timeout)
	_, err = n.call(t.Context(), "GET", "/"+next, "")
	if allowed {
		require.NoError(t, err, "created ahead: %s", logs.String())
		return
	}
	require.ErrorContains(t, err, "404", "the setting was read, and forbids it: %s", logs.String())
	require.Contains(t, logs.String(), "not created ahead: action.auto_create_index", "said at Info")
}

// TestIndexAheadPassOverLogsToSinkLogger: when the creation ahead passes over a node (one that
// never answers, one answering 503), the Warn goes to the sink's logger (WithLogger), as every
// other line of the sink and of its creations ahead does, with the keys of the package's other
// lines (url, err, status). Before, it went to the Client's logger (Config.Logger: here
// another one; by default one that discards), and named the error "error".
func TestIndexAheadPassOverLogsToSinkLogger(t *testing.T) {
	n := newNode(t)
	const timeout = time.Second
	tomorrow := day.AddDate(0, 0, 1).Format("2006.01.02")
	for _, bad := range []string{"silent", "answering 503"} {
		t.Run(bad, func(t *testing.T) {
			for try := 0; ; try++ {
				require.Less(t, try, 20, "the bad node never got a request")
				var addr string
				if bad == "silent" {
					silent, _ := testenv.SilentListener(t)
					addr = "http://" + silent
				} else {
					addr, _ = unavailableNode(t)
				}
				addrs := []string{addr, n.url}
				if try%2 == 1 {
					slices.Reverse(addrs)
				}
				clientLogs, sinkLogs := &logRecords{}, &logRecords{}
				c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: addrs, RequestTimeout: timeout, Logger: slog.New(clientLogs)})
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				prefix := n.newPrefix(t)
				s, err := opensearch.NewSink(c, statsMapping(prefix), opensearch.WithIndexAhead(time.Hour), opensearch.WithLogger(slog.New(sinkLogs)))
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close(context.Background()) })
				require.True(t, opensearch.CreateAhead(s, prefix+"-"+tomorrow))

				passes := func(h *logRecords) []map[string]slog.Value {
					h.mu.Lock()
					defer h.mu.Unlock()
					var out []map[string]slog.Value
					for _, r := range h.recs {
						if strings.HasSuffix(r.Message, "trying the next address") {
							require.Equal(t, slog.LevelWarn, r.Level)
							attrs := map[string]slog.Value{}
							r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
							out = append(out, attrs)
						}
					}
					return out
				}
				require.Empty(t, passes(clientLogs), "nothing of the sink's on the Client's logger")
				got := passes(sinkLogs)
				if len(got) == 0 {
					continue // the real node answered first: the bad node got nothing
				}
				for _, attrs := range got {
					require.True(t, strings.HasPrefix(attrs["url"].String(), addr+"/"), "the bad node's URL: %v", attrs)
					require.NotContains(t, attrs, "error")
					if bad == "silent" {
						require.Contains(t, attrs["err"].String(), "context deadline exceeded", "%v", attrs)
					} else {
						require.Equal(t, int64(503), attrs["status"].Int64(), "%v", attrs)
					}
				}
				return
			}
		})
	}
}
