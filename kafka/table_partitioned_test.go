package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

var _ join.PartitionedTable[string, driver] = (*kafka.Table[string, driver])(nil)

// TestKeyHash: KeyHash and Murmur2KeyHash place keys as sarama's hash partitioner (the
// Producer's) and murmur2 partitioner (the Java client's) do.
func TestKeyHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"", "a", "ab", "abc", "abcd", "cab-0042", "CAB-0001"}
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		keys = append(keys, string(b))
	}
	negative := 0
	for _, n := range []int32{1, 2, 3, 6, 7, 12, 100, 1 << 15} {
		hash, murmur := sarama.NewHashPartitioner("t"), sarama.NewMurmur2Partitioner("t")
		for _, k := range keys {
			m := &sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder(k)}
			want, err := hash.Partition(m, n)
			require.NoError(t, err)
			require.Equal(t, want, int32(kafka.KeyHash(k)%uint64(n)), "key %q of %d", k, n)
			require.Equal(t, want, int32(kafka.KeyHash([]byte(k))%uint64(n)))
			want, err = murmur.Partition(m, n)
			require.NoError(t, err)
			require.Equal(t, want, int32(kafka.Murmur2KeyHash(k)%uint64(n)), "murmur2: key %q of %d", k, n)
		}
	}
	for _, k := range keys {
		h := fnv.New32a()
		h.Write([]byte(k))
		if int32(h.Sum32()) < 0 {
			negative++
		}
	}
	require.Positive(t, negative, "keys whose FNV-1a is negative as an int32 are covered")
}

// produceKeyed writes messages with the Producer's partitioner (sarama's hash partitioner):
// Partition is left to it.
func produceKeyed(t testing.TB, brokers []string, msgs []*sarama.ProducerMessage) {
	t.Helper()
	c := saramaConfig()
	c.Producer.Partitioner = sarama.NewHashPartitioner
	p, err := sarama.NewSyncProducer(brokers, c)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	require.NoError(t, p.SendMessages(msgs))
}

// coTable is the brute force: every version of every key, as produced.
type coTable map[string][]tableRec

func (c coTable) add(recs ...tableRec) []*sarama.ProducerMessage {
	var msgs []*sarama.ProducerMessage
	for _, r := range recs {
		c[r.key] = append(c[r.key], r)
		m := &sarama.ProducerMessage{Key: sarama.StringEncoder(r.key), Timestamp: r.at}
		if r.value != "" {
			m.Value = sarama.StringEncoder(r.value)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// at is the driver of key at t by brute force ("" for none): the latest version at or
// before t.
func (c coTable) at(key string, t time.Time) string {
	var best *tableRec
	for i, r := range c[key] {
		if !r.at.After(t) && (best == nil || !r.at.Before(best.at)) {
			best = &c[key][i]
		}
	}
	if best == nil || best.value == "" {
		return ""
	}
	var d driver
	if err := json.Unmarshal([]byte(best.value), &d); err != nil {
		panic(err)
	}
	return d.Name
}

// coRows are the enriched rows of every instance by event id ("-" for none); a replayed row
// must equal the first one.
type coRows struct {
	mu       sync.Mutex
	rows     map[int]string
	conflict []string
}

func (r *coRows) add(batch []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range batch {
		idStr, driver, _ := strings.Cut(row, "=")
		id, _ := strconv.Atoi(idStr)
		if old, ok := r.rows[id]; ok && old != driver {
			r.conflict = append(r.conflict, fmt.Sprintf("%d: %s then %s", id, old, driver))
		}
		r.rows[id] = driver
	}
}

func (r *coRows) snapshot() (map[int]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int]string, len(r.rows))
	for k, v := range r.rows {
		m[k] = v
	}
	return m, slices.Clone(r.conflict)
}

// coInstance is one instance of the enrichment pipeline: its co-partitioned table, its
// Source in the group, running in the background.
type coInstance struct {
	tab  *kafka.Table[string, driver]
	src  *kafka.Source[event]
	stop func()
}

// owned returns the stream partitions the instance's Source owns.
func (c *coInstance) owned() []int32 {
	var ps []int32
	for name := range c.src.Stats().Lag {
		_, p, _ := strings.Cut(name, "/")
		n, _ := strconv.Atoi(p)
		ps = append(ps, int32(n))
	}
	slices.Sort(ps)
	return ps
}

func startCoInstance(t *testing.T, brokers []string, group, streamTopic, tableTopic string, rows *coRows) *coInstance {
	t.Helper()
	tab, err := kafka.NewTable(kafka.Config{Brokers: brokers, ClientID: "fleetstream-table-test"}, tableTopic, decodeDriver,
		kafka.WithCoPartitioned(streamTopic))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, tab.Load(ctx))
	require.Empty(t, tab.Stats().Partitions, "Load reads no partition")
	require.Equal(t, 3, tab.PartitionCount())

	src, err := kafka.NewSource(consumerConfig(brokers, group, streamTopic), kafka.JSON[event]())
	require.NoError(t, err)
	p, err := stream.New(50*time.Millisecond, stream.WithIdleTimeout(0), stream.WithName("ktable-test"))
	require.NoError(t, err)
	out, err := join.EnrichCoPartitioned(stream.From(p, src), tab, func(e event) string { return e.Key },
		func(e event, d driver, ok bool) string {
			if !ok {
				return fmt.Sprintf("%d=-", e.ID)
			}
			return fmt.Sprintf("%d=%s", e.ID, d.Name)
		})
	require.NoError(t, err)
	stream.To(out, stream.SinkFunc[string](func(_ context.Context, batch []string) error {
		rows.add(batch)
		return nil
	}))
	stop := runInBackground(t, p)
	var once sync.Once
	c := &coInstance{tab: tab, src: src, stop: func() {
		once.Do(func() {
			stop()
			require.NoError(t, tab.Close())
		})
	}}
	t.Cleanup(c.stop)
	return c
}

// runInBackground runs p until the returned stop is called, which waits for Run to return.
func runInBackground(t *testing.T, p *stream.Pipeline) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(waitFor):
			t.Errorf("pipeline did not stop within %v", waitFor)
		}
	}
}

// TestCoPartitionedTableEnrich: a stream topic and a compacted table topic of 3 partitions,
// both written by key with the Producer's partitioner; pipelines with a Source on the stream
// enrich every record from the table partition of its stream partition (checked against a
// brute-force join), each instance holds exactly the table partitions of the stream
// partitions it owns (also after a second instance joined and took some), and an update of
// the table after the load is seen by later records.
func TestCoPartitionedTableEnrich(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	tableTopic := newCompactedTopic(t, brokers, "ktable", 3)
	streamTopic := newTopic(t, brokers, "ktable-stream", 3)
	group := testenv.UniqueName(t, "ktable")
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }

	truth := coTable{}
	var recs []tableRec
	for i := range numKeys {
		key := keyOf(i)
		switch i {
		case 7: // no version: never found
			continue
		case 5: // deleted at 100 s
			recs = append(recs, tableRec{key: key, value: `{"name":"gone"}`, at: at(0)}, tableRec{key: key, at: at(100)})
			continue
		}
		recs = append(recs, tableRec{key: key, value: fmt.Sprintf(`{"name":"d%d-a"}`, i), at: at(0)},
			tableRec{key: key, value: fmt.Sprintf(`{"name":"d%d-b"}`, i), at: at(150)})
	}
	produceKeyed(t, brokers, withTopic(tableTopic, truth.add(recs...)))

	events := func(from, to int, key func(int) string, ts func(int) time.Time) []*sarama.ProducerMessage {
		var msgs []*sarama.ProducerMessage
		for i := from; i < to; i++ {
			e := event{ID: i, Key: key(i), TS: ts(i)}
			b, err := json.Marshal(e)
			require.NoError(t, err)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: streamTopic, Key: sarama.StringEncoder(e.Key), Value: sarama.ByteEncoder(b)})
		}
		return msgs
	}
	sent := map[int]event{}
	send := func(from, to int, key func(int) string, ts func(int) time.Time) {
		for i := from; i < to; i++ {
			sent[i] = event{ID: i, Key: key(i), TS: ts(i)}
		}
		produceKeyed(t, brokers, events(from, to, key, ts))
	}
	// checkRows waits for a row of every event sent and compares them with the brute force.
	rows := &coRows{rows: map[int]string{}}
	checkRows := func() {
		t.Helper()
		require.Eventually(t, func() bool { got, _ := rows.snapshot(); return len(got) >= len(sent) }, waitFor, 20*time.Millisecond)
		got, conflicts := rows.snapshot()
		require.Empty(t, conflicts, "a replayed row differs")
		found := 0
		for id, e := range sent {
			want := truth.at(e.Key, e.TS)
			if want == "" {
				want = "-"
			} else {
				found++
			}
			require.Equal(t, want, got[id], "event %d (%s at %v)", id, e.Key, e.TS)
		}
		require.Len(t, got, len(sent))
		require.Greater(t, found, len(sent)/2, "most events found their driver")
	}

	send(0, 300, keyOf, func(i int) time.Time { return at(i) })
	a := startCoInstance(t, brokers, group, streamTopic, tableTopic, rows)
	checkRows()
	require.Equal(t, []int32{0, 1, 2}, a.owned())
	require.Equal(t, []int32{0, 1, 2}, a.tab.Stats().Partitions)
	st := a.tab.Stats()
	require.Equal(t, numKeys-2, st.Keys, "every key but the deleted and the unknown one")
	require.EqualValues(t, len(recs), st.Records)

	// A second instance takes some partitions: each holds the table partitions of its own.
	b := startCoInstance(t, brokers, group, streamTopic, tableTopic, rows)
	var lastA, lastB, tabA, tabB []int32
	require.Eventually(t, func() bool {
		lastA, lastB = a.owned(), b.owned()
		tabA, tabB = a.tab.Stats().Partitions, b.tab.Stats().Partitions
		return len(lastA) > 0 && len(lastB) > 0 && len(lastA)+len(lastB) == 3 &&
			slices.Equal(lastA, tabA) && slices.Equal(lastB, tabB) &&
			a.tab.Stats().Keys+b.tab.Stats().Keys == numKeys-2 // loaded
	}, waitFor, 20*time.Millisecond, "owned %v and %v, table partitions %v and %v", lastA, lastB, tabA, tabB)
	require.Empty(t, slices.DeleteFunc(slices.Clone(lastA), func(p int32) bool { return !slices.Contains(lastB, p) }), "disjoint")
	keysA, keysB := a.tab.Stats().Keys, b.tab.Stats().Keys
	require.Equal(t, numKeys-2, keysA+keysB, "each key in one instance only")
	require.Positive(t, keysA)
	require.Positive(t, keysB)

	send(300, 600, keyOf, func(i int) time.Time { return at(i - 300) })
	checkRows()

	// An update after the load: once the table that holds the key has it, later records
	// see it.
	const cab = "cab-01"
	produceKeyed(t, brokers, withTopic(tableTopic, truth.add(tableRec{key: cab, value: `{"name":"zed"}`, at: at(1000)})))
	require.Eventually(t, func() bool {
		va, okA := a.tab.Latest(cab)
		vb, okB := b.tab.Latest(cab)
		return okA && va.Name == "zed" || okB && vb.Name == "zed"
	}, waitFor, 20*time.Millisecond)
	send(600, 610, func(int) string { return cab }, func(i int) time.Time { return at(1000 + i - 600) })
	checkRows()
	got, _ := rows.snapshot()
	require.Equal(t, "zed", got[605])
	require.Equal(t, "d1-a", got[1], "as of its event time, 1 s: the first driver")
}

func withTopic(topic string, msgs []*sarama.ProducerMessage) []*sarama.ProducerMessage {
	for _, m := range msgs {
		m.Topic = topic
	}
	return msgs
}

// TestCoPartitionedTableMismatch: a stream topic with another partition count fails Load
// with the fix in the error; LoadPartition refuses a partition the topic does not have, a
// call before Load and a global table.
func TestCoPartitionedTableMismatch(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	tableTopic := newCompactedTopic(t, brokers, "ktable-mismatch", 2)
	streamTopic := newTopic(t, brokers, "ktable-mismatch-stream", 3)
	cfg := kafka.Config{Brokers: brokers}
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()

	tab, err := kafka.NewTable(cfg, tableTopic, decodeDriver, kafka.WithCoPartitioned(streamTopic))
	require.NoError(t, err)
	require.ErrorIs(t, tab.LoadPartition(ctx, 0), kafka.ErrNotLoaded)
	err = tab.Load(ctx)
	require.ErrorIs(t, err, kafka.ErrNotCoPartitioned)
	for _, want := range []string{streamTopic, "has 3 partitions", tableTopic, "repartition the stream into 2 partitions",
		"kafka.WithPartitions(2)", "stream.RepartitionBy", "kafka.KeyHash"} {
		require.ErrorContains(t, err, want)
	}
	require.NoError(t, tab.Close())

	missing := testenv.UniqueName(t, "no-stream")
	tab, err = kafka.NewTable(cfg, tableTopic, decodeDriver, kafka.WithCoPartitioned(missing))
	require.NoError(t, err)
	err = tab.Load(ctx)
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.ErrorContains(t, err, missing)
	require.NoError(t, tab.Close())

	tab, err = kafka.NewTable(cfg, tableTopic, decodeDriver, kafka.WithCoPartitioned())
	require.NoError(t, err)
	require.NoError(t, tab.Load(ctx))
	err = tab.LoadPartition(ctx, 2)
	require.ErrorIs(t, err, kafka.ErrNotCoPartitioned)
	require.ErrorContains(t, err, "stream partition 2 has no table partition")
	require.ErrorIs(t, tab.LoadPartition(ctx, -1), kafka.ErrNotCoPartitioned)
	require.NoError(t, tab.Close())
	require.ErrorIs(t, tab.LoadPartition(ctx, 0), kafka.ErrNotLoaded)

	global := loadTable(t, brokers, tableTopic)
	require.ErrorIs(t, global.LoadPartition(ctx, 0), kafka.ErrInvalidOption)
	require.Equal(t, []int32{0, 1}, global.Stats().Partitions)
}

// TestCoPartitionedTableLoadRelease: LoadPartition reads a partition up to its end, a second
// call shares it, Release drops it after the last user, and a partition loaded again is
// read again (with what was written meanwhile).
func TestCoPartitionedTableLoadRelease(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, brokers, "ktable-load", 2)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produceTable(t, brokers, topic,
		tableRec{"cab-1", `{"name":"ana"}`, t0, 0},
		tableRec{"cab-2", `{"name":"bob"}`, t0, 1},
		tableRec{"cab-3", `{"name":"cid"}`, t0, 1},
	)
	tab := loadTable(t, brokers, topic, kafka.WithCoPartitioned())
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, ok := tab.LookupPartition(1, "cab-2", t0)
	require.False(t, ok, "nothing before LoadPartition")

	require.NoError(t, tab.LoadPartition(ctx, 1))
	st := tab.Stats()
	require.Equal(t, []int32{1}, st.Partitions)
	require.Equal(t, 2, st.Keys)
	require.EqualValues(t, 2, st.Records)
	v, ok := tab.LookupPartition(1, "cab-2", t0)
	require.True(t, ok)
	require.Equal(t, "bob", v.Name)
	_, ok = tab.LookupPartition(0, "cab-2", t0)
	require.False(t, ok, "another partition")
	_, ok = tab.Latest("cab-1")
	require.False(t, ok, "partition 0 is not held")

	require.NoError(t, tab.LoadPartition(ctx, 1)) // shared: not read again
	require.EqualValues(t, 2, tab.Stats().Records)
	tab.Release(1)
	require.Equal(t, []int32{1}, tab.Stats().Partitions, "still used once")
	tab.Release(1)
	st = tab.Stats()
	require.Empty(t, st.Partitions)
	require.Equal(t, 0, st.Keys)
	_, ok = tab.LookupPartition(1, "cab-2", t0)
	require.False(t, ok, "released")
	tab.Release(1) // not held: nothing

	produceTable(t, brokers, topic, tableRec{"cab-2", `{"name":"dan"}`, t0.Add(time.Second), 1})
	require.NoError(t, tab.LoadPartition(ctx, 1))
	v, ok = tab.LookupPartition(1, "cab-2", t0.Add(time.Minute))
	require.True(t, ok)
	require.Equal(t, "dan", v.Name, "read again up to the end offset of the new call")
	require.NoError(t, tab.LoadPartition(ctx, 0))
	require.Equal(t, []int32{0, 1}, tab.Stats().Partitions)
	require.Equal(t, 3, tab.Len())

	// released and loaded again at once, as a rebalance that gives a partition back does:
	// the new load waits for the old consumer to let go of the partition (sarama refuses a
	// partition its consumer still holds)
	for range 3 {
		tab.Release(1)
		require.NoError(t, tab.LoadPartition(ctx, 1))
		v, ok = tab.LookupPartition(1, "cab-2", t0.Add(time.Minute))
		require.True(t, ok)
		require.Equal(t, "dan", v.Name)
	}

	// a load cut short by its context leaves nothing held
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	tab.Release(0)
	err := tab.LoadPartition(short, 0)
	if err != nil { // it may have been loaded before the select saw ctx end
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, []int32{1}, tab.Stats().Partitions)
	}
}

// TestCoPartitionedTableRepartitionFix: the fix the mismatch error names. The stream topic
// has 2 partitions and is not keyed (records go round robin); the table topic has 3,
// written by key with the Producer's partitioner. The pipeline repartitions the stream
// with stream.RepartitionBy and kafka.KeyHash over an exchange of the table's partition
// count, and enriches the repartitioned stream: every record finds what the brute force
// finds. (With stream.HashKey instead of KeyHash it fails: 64-bit FNV-1a places keys
// elsewhere. Not with 2 partitions, where both FNV-1a agree: the low bit of FNV-1a is the
// parity of the bytes' low bits whatever the width.)
func TestCoPartitionedTableRepartitionFix(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	tableTopic := newCompactedTopic(t, brokers, "ktable-fix", 3)
	streamTopic := newTopic(t, brokers, "ktable-fix-stream", 2)
	pipeline := testenv.UniqueName(t, "ktable-fix")
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	truth := coTable{}
	var recs []tableRec
	for i := range numKeys {
		recs = append(recs, tableRec{key: keyOf(i), value: fmt.Sprintf(`{"name":"d%d-a"}`, i), at: at(0)},
			tableRec{key: keyOf(i), value: fmt.Sprintf(`{"name":"d%d-b"}`, i), at: at(100)})
	}
	produceKeyed(t, brokers, withTopic(tableTopic, truth.add(recs...)))
	const n = 240
	var msgs []*sarama.ProducerMessage
	for i := range n {
		b, err := json.Marshal(event{ID: i, Key: keyOf(i), TS: at(i)})
		require.NoError(t, err)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: streamTopic, Partition: int32(i % 2), Value: sarama.ByteEncoder(b)})
	}
	produce(t, brokers, msgs)

	cfg := consumerConfig(brokers, pipeline, streamTopic)
	tab, err := kafka.NewTable(cfg, tableTopic, decodeDriver, kafka.WithCoPartitioned())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, tab.Load(ctx))
	t.Cleanup(func() { require.NoError(t, tab.Close()) })
	// Enriching the stream topic itself would be refused:
	check, err := kafka.NewTable(cfg, tableTopic, decodeDriver, kafka.WithCoPartitioned(streamTopic))
	require.NoError(t, err)
	require.ErrorIs(t, check.Load(ctx), kafka.ErrNotCoPartitioned)
	require.NoError(t, check.Close())

	src, err := kafka.NewSource(cfg, kafka.JSON[event]())
	require.NoError(t, err)
	ex, err := kafka.NewExchange(cfg, pipeline, "bytable", pairCodec, kafka.WithPartitions(tab.PartitionCount()), kafka.WithReplication(1))
	require.NoError(t, err)
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, saramaConfig()); err == nil {
			_ = a.DeleteTopic(ex.Topic())
			_ = a.Close()
		}
	})
	p, err := stream.New(50*time.Millisecond, stream.WithIdleTimeout(0), stream.WithName(pipeline))
	require.NoError(t, err)
	pairs := stream.Map(stream.From(p, src), func(e event) stream.Pair[string, int64] { return stream.KV(e.Key, int64(e.ID)) })
	byTable := stream.RepartitionBy(pairs, "bytable", ex, func(p stream.Pair[string, int64]) uint64 { return kafka.KeyHash(p.Key) })
	out, err := join.EnrichCoPartitioned(byTable, tab, func(p stream.Pair[string, int64]) string { return p.Key },
		func(p stream.Pair[string, int64], d driver, ok bool) string {
			if !ok {
				return fmt.Sprintf("%d=-", p.Value)
			}
			return fmt.Sprintf("%d=%s", p.Value, d.Name)
		})
	require.NoError(t, err)
	rows := &coRows{rows: map[int]string{}}
	stream.To(out, stream.SinkFunc[string](func(_ context.Context, batch []string) error { rows.add(batch); return nil }))
	defer runInBackground(t, p)()

	require.Eventually(t, func() bool { got, _ := rows.snapshot(); return len(got) >= n }, waitFor, 20*time.Millisecond)
	got, conflicts := rows.snapshot()
	require.Empty(t, conflicts)
	require.Len(t, got, n)
	for i := range n {
		require.Equal(t, truth.at(keyOf(i), at(i)), got[i], "event %d", i)
	}
	require.Equal(t, []int32{0, 1, 2}, tab.Stats().Partitions)
}
