package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/testenv"
)

var _ join.Table[string, driver] = (*kafka.Table[string, driver])(nil)

// driver is the test table's value: the driver of a cab.
type driver struct {
	Name string `json:"name"`
}

func decodeDriver(key, value []byte) (string, driver, error) {
	var d driver
	if value == nil {
		return string(key), d, nil
	}
	if err := json.Unmarshal(value, &d); err != nil {
		return "", d, err
	}
	if d.Name == "" {
		return "", d, errors.New("driver: empty name")
	}
	return string(key), d, nil
}

// tableRec is one record of a table topic; value "" is a tombstone.
type tableRec struct {
	key, value string
	at         time.Time
	part       int32
}

func produceTable(t testing.TB, brokers []string, topic string, recs ...tableRec) {
	t.Helper()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Partition: r.part, Key: sarama.StringEncoder(r.key), Timestamp: r.at}
		if r.value != "" {
			m.Value = sarama.StringEncoder(r.value)
		}
		msgs[i] = m
	}
	produce(t, brokers, msgs)
}

func newCompactedTopic(t testing.TB, brokers []string, prefix string, parts int32) string {
	t.Helper()
	topic := testenv.UniqueName(t, prefix)
	n, err := kafka.EnsureCompactedTopic(t.Context(), kafka.Config{Brokers: brokers}, topic, parts, 1)
	require.NoError(t, err)
	require.Equal(t, parts, n)
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, saramaConfig()); err == nil {
			_ = a.DeleteTopic(topic)
			_ = a.Close()
		}
	})
	return topic
}

func loadTable(t testing.TB, brokers []string, topic string, opts ...kafka.TableOption) *kafka.Table[string, driver] {
	t.Helper()
	tab, err := kafka.NewTable(kafka.Config{Brokers: brokers, ClientID: "fleetstream-table-test"}, topic, decodeDriver, opts...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, tab.Load(ctx))
	t.Cleanup(func() { require.NoError(t, tab.Close()) })
	return tab
}

func TestTableLoadLookupFollow(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, brokers, "table", 3)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	produceTable(t, brokers, topic,
		tableRec{"cab-1", `{"name":"ana"}`, at(0), 0},
		tableRec{"cab-1", `{"name":"bob"}`, at(10), 0},
		tableRec{"cab-1", `{"name":"cid"}`, at(20), 0},
		tableRec{"cab-2", `{"name":"dan"}`, at(5), 1},
		tableRec{"cab-2", "", at(15), 1}, // deleted
		tableRec{"cab-3", `{"name":"eve"}`, at(0), 2},
		tableRec{"cab-3", "", at(10), 2},
		tableRec{"cab-3", `{"name":"fay"}`, at(30), 2}, // back
		tableRec{"cab-9", "", at(3), 2},                // tombstone of an unknown key
		tableRec{"cab-4", `not json`, at(1), 1},        // undecodable
	)

	tab := loadTable(t, brokers, topic)
	st := tab.Stats()
	require.True(t, st.Loaded)
	// Versions: cab-9's lone tombstone is kept too (WithTombstoneRetention).
	require.Equal(t, kafka.TableStats{Keys: 2, Versions: 9, Records: 10, Updates: 6, Tombstones: 3, DecodeErrors: 1, Loaded: true,
		Partitions: []int32{0, 1, 2}}, st)

	for _, c := range []struct {
		key  string
		at   int
		want string // "" for none
	}{
		{"cab-1", -1, ""}, {"cab-1", 0, "ana"}, {"cab-1", 9, "ana"}, {"cab-1", 10, "bob"}, {"cab-1", 25, "cid"},
		{"cab-2", 4, ""}, {"cab-2", 5, "dan"}, {"cab-2", 14, "dan"}, {"cab-2", 15, ""}, {"cab-2", 99, ""},
		{"cab-3", 5, "eve"}, {"cab-3", 10, ""}, {"cab-3", 29, ""}, {"cab-3", 30, "fay"},
		{"cab-4", 5, ""}, {"cab-9", 5, ""}, {"nobody", 5, ""},
	} {
		v, ok := tab.Lookup(c.key, at(c.at))
		require.Equal(t, c.want != "", ok, "%s at %d", c.key, c.at)
		require.Equal(t, c.want, v.Name, "%s at %d", c.key, c.at)
	}
	latest, ok := tab.Latest("cab-1")
	require.True(t, ok)
	require.Equal(t, "cid", latest.Name)
	_, ok = tab.Latest("cab-2")
	require.False(t, ok)

	// Followed after Load: a new version, a deleted key back, a deletion.
	produceTable(t, brokers, topic,
		tableRec{"cab-1", `{"name":"gus"}`, at(40), 0},
		tableRec{"cab-2", `{"name":"hal"}`, at(50), 1},
		tableRec{"cab-3", "", at(60), 2},
	)
	require.Eventually(t, func() bool { return tab.Stats().Records == 13 }, waitFor, 10*time.Millisecond)
	for key, want := range map[string]string{"cab-1": "gus", "cab-2": "hal", "cab-3": ""} {
		v, ok := tab.Latest(key)
		require.Equal(t, want != "", ok, key)
		require.Equal(t, want, v.Name, key)
	}
	v, _ := tab.Lookup("cab-1", at(39))
	require.Equal(t, "cid", v.Name, "history kept")
	require.Equal(t, 2, tab.Len())
	require.Eventually(t, func() bool { return tab.Stats().Lag == 0 }, waitFor, 10*time.Millisecond)

	// Two versions per key: cab-1 keeps cid and gus only.
	two := loadTable(t, brokers, topic, kafka.WithVersions(2))
	_, ok = two.Lookup("cab-1", at(15))
	require.False(t, ok, "bob was dropped: nothing before the oldest version")
	v, ok = two.Lookup("cab-1", at(20))
	require.True(t, ok)
	require.Equal(t, "cid", v.Name)
	fb := loadTable(t, brokers, topic, kafka.WithVersions(2), kafka.WithOldestFallback())
	v, ok = fb.Lookup("cab-1", at(15))
	require.True(t, ok)
	require.Equal(t, "cid", v.Name, "the oldest version kept answers earlier times")
}

func TestTableMissingTopic(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "no-table")
	tab, err := kafka.NewTable(kafka.Config{Brokers: brokers}, topic, decodeDriver)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	err = tab.Load(ctx)
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.ErrorContains(t, err, topic)
	require.ErrorIs(t, tab.Load(ctx), kafka.ErrLoadTwice)
	require.NoError(t, tab.Close())
	// and the broker did not create it
	admin := newAdmin(t, brokers)
	topics, err := admin.ListTopics()
	require.NoError(t, err)
	require.NotContains(t, topics, topic)
}

func TestTableEmptyTopicAndCompaction(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, brokers, "table-empty", 2)
	// again: the existing compacted topic is accepted
	n, err := kafka.EnsureCompactedTopic(t.Context(), kafka.Config{Brokers: brokers}, topic, 2, 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	tab := loadTable(t, brokers, topic)
	require.Equal(t, 0, tab.Len())

	plain := newTopic(t, brokers, "table-plain", 1)
	_, err = kafka.EnsureCompactedTopic(t.Context(), kafka.Config{Brokers: brokers}, plain, 1, 1)
	require.ErrorIs(t, err, kafka.ErrNotCompacted)
}

func TestNewTableInvalid(t *testing.T) {
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}}
	for name, c := range map[string]struct {
		cfg    kafka.Config
		topic  string
		decode func(k, v []byte) (string, driver, error)
		opts   []kafka.TableOption
	}{
		"no brokers":                   {kafka.Config{}, "t", decodeDriver, nil},
		"no topic":                     {cfg, "", decodeDriver, nil},
		"no decode":                    {cfg, "t", nil, nil},
		"zero version":                 {cfg, "t", decodeDriver, []kafka.TableOption{kafka.WithVersions(0)}},
		"negative tombstone retention": {cfg, "t", decodeDriver, []kafka.TableOption{kafka.WithTombstoneRetention(-time.Second)}},
		"nil option":                   {cfg, "t", decodeDriver, []kafka.TableOption{nil}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kafka.NewTable(c.cfg, c.topic, c.decode, c.opts...)
			require.ErrorIs(t, err, kafka.ErrInvalidOption)
		})
	}
}

// TestTableEnrich joins a stream with a table loaded from Kafka, as of each record's time.
func TestTableEnrich(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, brokers, "table-enrich", 2)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	produceTable(t, brokers, topic,
		tableRec{"cab-1", `{"name":"ana"}`, at(0), 0},
		tableRec{"cab-1", `{"name":"bob"}`, at(10), 0},
		tableRec{"cab-2", `{"name":"dan"}`, at(0), 1},
		tableRec{"cab-2", "", at(10), 1},
	)
	tab := loadTable(t, brokers, topic)

	h := streamtest.New(t, time.Second, stream.WithMaxFutureEventTime(0))
	q, cabs := streamtest.NewQueue[string](h)
	out, err := join.Enrich(cabs, tab, func(cab string) string { return cab },
		func(cab string, d driver, ok bool) string {
			if !ok {
				return cab + ":-"
			}
			return cab + ":" + d.Name
		})
	require.NoError(t, err)
	got := streamtest.Collect(out)
	var recs []stream.Record[string]
	for _, r := range []struct {
		cab string
		s   int
	}{{"cab-1", -1}, {"cab-1", 5}, {"cab-1", 10}, {"cab-2", 5}, {"cab-2", 15}, {"cab-3", 5}} {
		recs = append(recs, stream.Record[string]{Value: r.cab, EventTime: at(r.s)})
	}
	q.Add(recs...)
	q.End()
	h.RunUntilDone()
	require.Equal(t, []string{"cab-1:-", "cab-1:ana", "cab-1:bob", "cab-2:dan", "cab-2:-", "cab-3:-"}, got.Slice())
}

// TestTableTransactional: a table written in transactions ends in transaction markers, which
// the consumer never delivers; Load still returns, and the records of an aborted
// transaction are not in the table.
func TestTableTransactional(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, brokers, "table-txn", 1)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	c := saramaConfig()
	c.Producer.Idempotent = true
	c.Producer.Transaction.ID = testenv.UniqueName(t, "table-txn")
	c.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(brokers, c)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	send := func(commit bool, key, name string, s int) {
		require.NoError(t, p.BeginTxn())
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key),
			Value: sarama.StringEncoder(`{"name":"` + name + `"}`), Timestamp: t0.Add(time.Duration(s) * time.Second)})
		require.NoError(t, err)
		if commit {
			require.NoError(t, p.CommitTxn())
		} else {
			require.NoError(t, p.AbortTxn())
		}
	}
	send(true, "cab-1", "ana", 0)
	send(false, "cab-1", "zed", 10) // aborted
	send(true, "cab-2", "bob", 0)
	send(false, "cab-2", "zoe", 10) // aborted: the log ends in its abort marker

	tab := loadTable(t, brokers, topic)
	for key, want := range map[string]string{"cab-1": "ana", "cab-2": "bob"} {
		v, ok := tab.Latest(key)
		require.True(t, ok, key)
		require.Equal(t, want, v.Name, key)
	}
	require.EqualValues(t, 2, tab.Stats().Records)
}

// TestTableAfterCompaction: once the broker compacted the topic, a new Load sees only each
// key's last record, so a lookup before its timestamp finds nothing, or that record with
// WithOldestFallback.
func TestTableAfterCompaction(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "table-compacted")
	str := func(s string) *string { return &s }
	admin := newAdmin(t, brokers)
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{
		"cleanup.policy": str("compact"), "segment.ms": str("100"), "min.cleanable.dirty.ratio": str("0.001"),
		"min.compaction.lag.ms": str("0"), "delete.retention.ms": str("100"),
	}}, false))
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	produceTable(t, brokers, topic,
		tableRec{"cab-1", `{"name":"ana"}`, at(0), 0},
		tableRec{"cab-1", `{"name":"bob"}`, at(10), 0},
		tableRec{"cab-1", `{"name":"cid"}`, at(20), 0},
	)
	// Records written later roll the segment (segment.ms), so the cleaner may compact the
	// first one; keep writing a filler key until a fresh load sees cab-1's history gone.
	var tab *kafka.Table[string, driver]
	deadline := time.Now().Add(waitFor)
	for i := 0; ; i++ {
		produceTable(t, brokers, topic, tableRec{"filler", `{"name":"x"}`, at(30 + i), 0})
		tab = loadTable(t, brokers, topic)
		if _, ok := tab.Lookup("cab-1", at(5)); !ok {
			break
		}
		require.NoError(t, tab.Close())
		require.True(t, time.Now().Before(deadline), "the topic was never compacted")
		select { // give the log cleaner (log.cleaner.backoff.ms: 15 s) time between attempts
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	v, ok := tab.Latest("cab-1")
	require.True(t, ok)
	require.Equal(t, "cid", v.Name)
	_, ok = tab.Lookup("cab-1", at(15))
	require.False(t, ok, "bob was compacted away: nothing before cid's timestamp")
	fb := loadTable(t, brokers, topic, kafka.WithOldestFallback())
	v, ok = fb.Lookup("cab-1", at(5))
	require.True(t, ok)
	require.Equal(t, "cid", v.Name)
}

// TestTableLoadCanceled: Load returns ctx's error while it still tries to connect, and Close
// waits for that attempt (no race, no leak).
func TestTableLoadCanceled(t *testing.T) {
	tab, err := kafka.NewTable(kafka.Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: 100 * time.Millisecond}, "t", decodeDriver)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, tab.Load(ctx), context.DeadlineExceeded)
	require.NoError(t, tab.Close())
	require.NoError(t, tab.Close())
	_, ok := tab.Latest("cab-1")
	require.False(t, ok)
}
