package main

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSpeedingEndToEnd runs the README's program of one's own as a user would, on the real
// Kafka and OpenSearch: each cab's top speed above the limit per event minute reaches its
// daily index with its template's mapping (a first top speed of 125.0, which JSON writes 125,
// maps Value as a double, not a whole number), the cab that kept under the limit is not
// there, the library's logs reach the program's logger, and a SIGINT stops it cleanly (exit
// 0).
func TestSpeedingEndToEnd(t *testing.T) {
	brokers, osURL := testenv.KafkaBrokers(t), testenv.OpenSearchURL(t)
	name := testenv.UniqueName(t, "speeding")
	bin := filepath.Join(t.TempDir(), "speeding")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = kafka.EnsureTopic(ctx, kafka.Config{Brokers: brokers}, name, 1, 1)
	require.NoError(t, err)
	// A day of its own (in the past: the pipeline refuses event times an hour ahead of its
	// clock), so that the daily index is this test's alone.
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	day := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(h.Sum32()%7300))
	index := "speeding-" + day.Format("2006.01.02")
	t.Cleanup(func() { osDo(t, osURL, "DELETE", "/"+index) })

	at := func(s int) time.Time { return day.Add(10*time.Hour + time.Duration(s)*time.Second) }
	events := []telemetry.Event{
		{CabID: "A", Time: at(1), SpeedKmh: 125.0},
		{CabID: "B", Time: at(2), SpeedKmh: 121.5},
		{CabID: "A", Time: at(3), SpeedKmh: 110},
		{CabID: "C", Time: at(4), SpeedKmh: 119.9},   // under the limit
		{CabID: "A", Time: at(65), SpeedKmh: 131.25}, // the next minute
		// Under the limit, so dropped by the Filter, it still closes both minutes: the window
		// moves with every record of the partition (window's "Watermarks and lateness").
		{CabID: "C", Time: at(200), SpeedKmh: 50},
	}
	prod := producer(t, brokers)
	for _, e := range events {
		e.Lat, e.Lon, e.Has = 41.15, -8.61, telemetry.HasSpeed
		v, err := telemetry.Append(nil, e)
		require.NoError(t, err)
		_, _, err = prod.SendMessage(&sarama.ProducerMessage{Topic: name, Key: sarama.StringEncoder(e.CabID), Value: sarama.ByteEncoder(v)})
		require.NoError(t, err)
	}

	// The program installs its template: one an earlier run left must not pass for it.
	osDo(t, osURL, "DELETE", "/_index_template/speeding")
	var log syncbuf.Buffer
	cmd := exec.Command(bin, "-brokers", strings.Join(brokers, ","), "-opensearch", osURL,
		"-topic", name, "-group", name, "-limit", "120")
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("speeding's output:\n%s", log.String())
		}
	})

	type doc struct {
		Key   string
		Start time.Time
		Value float64
		Final bool
	}
	var docs []doc
	deadline := time.Now().Add(45 * time.Second)
	for len(docs) < 3 {
		require.True(t, time.Now().Before(deadline), "3 documents in %s; have %d", index, len(docs))
		time.Sleep(200 * time.Millisecond) // polling interval, bounded by the deadline
		var res struct {
			Hits struct {
				Hits []struct {
					Source doc `json:"_source"`
				}
			}
		}
		if osGet(t, osURL, "/"+index+"/_search?size=100&sort=Key,Start", &res) {
			docs = docs[:0]
			for _, h := range res.Hits.Hits {
				docs = append(docs, h.Source)
			}
		}
	}
	require.Equal(t, []doc{
		{Key: "A", Start: at(0), Value: 125, Final: true},
		{Key: "A", Start: at(60), Value: 131.25, Final: true},
		{Key: "B", Start: at(0), Value: 121.5, Final: true},
	}, docs)
	var mapping map[string]struct {
		Mappings struct {
			Properties map[string]struct{ Type string }
		}
	}
	require.True(t, osGet(t, osURL, "/"+index+"/_mapping", &mapping))
	require.Equal(t, "double", mapping[index].Mappings.Properties["Value"].Type, "Value's mapping (the template's)")

	// The library logs through the logger the program gives each part (none would discard).
	require.Contains(t, log.String(), "kafka: joined the group")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-done:
		require.NoError(t, err, "a SIGINT stops the program cleanly (exit 0)")
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGINT")
	}
}

func producer(t *testing.T, brokers []string) sarama.SyncProducer {
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// osGet GETs path into out; false while the index does not exist yet.
func osGet(t *testing.T, base, path string, out any) bool {
	resp, err := http.Get(base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusNotFound {
		return false
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	require.NoError(t, json.Unmarshal(body, out))
	return true
}

func osDo(t *testing.T, base, method, path string) {
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("%s %s: %v", method, path, err)
		return
	}
	_ = resp.Body.Close()
}
