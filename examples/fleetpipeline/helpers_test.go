package main

// Helpers of the integration tests: the fleetpipeline and replay binaries built once in
// TestMain and run as subprocesses, and a small OpenSearch REST client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// Paths of the binaries built by TestMain.
var (
	pipelineBin string
	replayBin   string
)

func TestMain(m *testing.M) {
	if bound := os.Getenv(hungStopEnv); bound != "" {
		os.Exit(hungStop(bound)) // TestStopBoundedWhenAStageHangs's job
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fleetpipeline-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// fleetstream_testhooks: FLEETSTREAM_TEST_EXCHANGE_JOIN_DELAY, if set, delays the
	// repartitions' consumers' first join (kafka/joindelay.go).
	cmd := exec.Command("go", "build", "-tags", "fleetstream_testhooks", "-o", dir+string(filepath.Separator), "./examples/fleetpipeline", "./examples/replay")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build: %v\n%s", err, out)
		return 1
	}
	pipelineBin, replayBin = filepath.Join(dir, "fleetpipeline"), filepath.Join(dir, "replay")
	code := m.Run()
	if f := &portoFixture; f.done && f.services.opensearch != "" {
		deleteIndexes(f.services, "*-"+f.run.tag+"-*") // shared by several tests: kept until all ran
	}
	return code
}

// moduleRoot is testenv.RepoRoot without a *testing.T, for TestMain.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod above the working directory")
		}
		d = parent
	}
}

// portoCSV is the Porto sample replay reads by default (relative to the repo root).
func portoCSV(t testing.TB) string {
	t.Helper()
	p := filepath.Join(testenv.RepoRoot(t), "..", "shared", "data", "porto", "train.1k.csv")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Porto sample: %v", err)
	}
	return p
}

// services are the addresses of the testenv services.
type services struct {
	brokers    string
	opensearch string
}

func needServices(t testing.TB) services {
	t.Helper()
	return services{
		brokers:    strings.Join(testenv.KafkaBrokers(t), ","),
		opensearch: testenv.OpenSearchURL(t),
	}
}

// proc is a running binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error // valid once done is closed
}

// start runs bin with args. The process is killed when the test ends, if still running.
func start(t testing.TB, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = testenv.RepoRoot(t)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s (last 6000 bytes):\n%s", p.name, tail(p.out.String(), 6000))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits at most timeout for the process to end and returns its error.
func (p *proc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not end within %v; output:\n%s", p.name, timeout, tail(p.out.String(), 6000))
		return nil
	}
}

// succeed waits for the process and requires exit status 0.
func (p *proc) succeed(t testing.TB, timeout time.Duration) string {
	t.Helper()
	err := p.wait(t, timeout)
	out := p.out.String()
	require.NoError(t, err, "%s failed; output:\n%s", p.name, tail(out, 6000))
	return out
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	require.False(t, p.exited(), "%s ended before it could be killed", p.name)
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// pipelineRun names everything one fleetpipeline run touches.
type pipelineRun struct {
	topic, group, name, tag, alerts string
}

func (r pipelineRun) args(s services, extra ...string) []string {
	return append([]string{
		"-brokers", s.brokers, "-opensearch", s.opensearch,
		"-topic", r.topic, "-group", r.group, "-name", r.name, "-index-tag", r.tag,
		"-alerts-topic", r.alerts,
		"-batch", "200ms", "-exit-when-idle", "2s", "-status-every", "100ms",
		"-http", "127.0.0.1:0", // tests run pipelines side by side: any free port
	}, extra...)
}

// index returns the pattern of the run's indexes with prefix base ("cab-stats").
func (r pipelineRun) index(base string) string { return base + "-" + r.tag + "-*" }

// newRun names a run over topic and creates its topics (6 partitions); its indexes are
// deleted after the test.
func newRun(t testing.TB, s services, topic, prefix string) pipelineRun {
	t.Helper()
	r := namedRun(t, s, topic, prefix)
	t.Cleanup(func() { deleteIndexes(s, "*-"+r.tag+"-*") })
	return r
}

// namedRun is newRun for a run that tests share (portoRun): its indexes outlive the test.
func namedRun(t testing.TB, s services, topic, prefix string) pipelineRun {
	t.Helper()
	r := pipelineRun{
		topic:  topic,
		group:  testenv.UniqueName(t, prefix+"-group"),
		name:   testenv.UniqueName(t, prefix+"-name"),
		tag:    testenv.UniqueName(t, prefix),
		alerts: testenv.UniqueName(t, prefix+"-alerts"),
	}
	ensureTopic(t, s, r.topic)
	ensureTopic(t, s, r.alerts)
	return r
}

// deleteIndexes deletes the indexes of pattern, so that a day of test runs does not leave
// hundreds behind on long-lived services; an error (the node stopped by a fault test) leaves
// them.
func deleteIndexes(s services, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "DELETE", s.opensearch+"/"+pattern+"?expand_wildcards=all", nil)
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// ensureTopic creates topic with 6 partitions. It retries kafka.EnsureTopic, which fails when
// the broker's metadata does not show a topic it has just created yet (see the report of
// issue 7); the binaries call it too, and find the topic complete then.
func ensureTopic(t testing.TB, s services, topic string) {
	t.Helper()
	cfg := kafka.Config{Brokers: strings.Split(s.brokers, ",")}
	var err error
	waitFor(t, 30*time.Second, 100*time.Millisecond, "topic "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var n int32
		n, err = kafka.EnsureTopic(ctx, cfg, topic, 6, 1)
		if err == nil {
			require.EqualValues(t, 6, n, "partitions of %s", topic)
		}
		return err == nil
	})
}

// replay produces to topic with the replay binary and waits until it is done.
func replay(t testing.TB, s services, topic string, args ...string) string {
	t.Helper()
	p := start(t, "replay", replayBin, append([]string{"-brokers", s.brokers, "-topic", topic, "-porto", portoCSV(t), "-quiet"}, args...)...)
	return p.succeed(t, time.Minute)
}

var summaryRE = regexp.MustCompile(`consumed (\d+) records .*?, (\d+) dead letters, (\d+) late events`)

// summary parses fleetpipeline's final summary line.
func summary(t testing.TB, out string) (records, deadLetters, late int64) {
	t.Helper()
	m := summaryRE.FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, m, "no summary line in:\n%s", tail(out, 3000))
	last := m[len(m)-1]
	n := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
		return v
	}
	return n(last[1]), n(last[2]), n(last[3])
}

var requestsSummaryRE = regexp.MustCompile(`ride requests: consumed (\d+) records, (\d+) dead letters`)

// requestsSummary parses fleetpipeline's summary line of the ride requests (-requests-topic).
func requestsSummary(t testing.TB, out string) (records, deadLetters int64) {
	t.Helper()
	m := requestsSummaryRE.FindStringSubmatch(out)
	require.NotNil(t, m, "no summary of the ride requests in:\n%s", tail(out, 3000))
	records, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	deadLetters, err = strconv.ParseInt(m[2], 10, 64)
	require.NoError(t, err)
	return records, deadLetters
}

// newRequestsRun is newRun on a new telemetry topic named after prefix, with a ride
// requests topic of its own (6 partitions) for -requests-topic.
func newRequestsRun(t testing.TB, s services, prefix string) (r pipelineRun, requests string) {
	t.Helper()
	r = newRun(t, s, testenv.UniqueName(t, prefix), prefix)
	requests = testenv.UniqueName(t, prefix+"-requests")
	ensureTopic(t, s, requests)
	return r, requests
}

// ---- OpenSearch ----

// osClient is a minimal OpenSearch REST client.
type osClient struct {
	t    testing.TB
	base string
}

func newOS(t testing.TB, s services) *osClient { return &osClient{t: t, base: s.opensearch} }

// do sends a request and decodes the JSON response into out (if not nil). It fails the test
// unless the status is 2xx.
func (c *osClient) do(method, path string, body any, out any) {
	c.t.Helper()
	status, resp := c.raw(method, path, body)
	require.True(c.t, status/100 == 2, "%s %s: %d %s", method, path, status, tail(string(resp), 2000))
	if out != nil {
		require.NoError(c.t, json.Unmarshal(resp, out), "%s %s", method, path)
	}
}

func (c *osClient) raw(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b
}

func (c *osClient) refresh(pattern string) {
	c.t.Helper()
	c.do("POST", "/"+pattern+"/_refresh", nil, nil)
}

func (c *osClient) count(pattern string) int64 {
	c.t.Helper()
	var r struct {
		Count int64 `json:"count"`
	}
	c.do("GET", "/"+pattern+"/_count", nil, &r)
	return r.Count
}

// doc is one stored document.
type doc struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Source json.RawMessage `json:"_source"`
}

// docs returns every document of pattern (refreshed first), with a scroll.
func (c *osClient) docs(pattern string) []doc {
	c.t.Helper()
	c.refresh(pattern)
	type page struct {
		ScrollID string `json:"_scroll_id"`
		Hits     struct {
			Hits []doc `json:"hits"`
		} `json:"hits"`
	}
	var p page
	c.do("POST", "/"+pattern+"/_search?scroll=1m", map[string]any{"size": 5000, "sort": []string{"_doc"}}, &p)
	var all []doc
	for len(p.Hits.Hits) > 0 {
		all = append(all, p.Hits.Hits...)
		id := p.ScrollID
		p = page{}
		c.do("POST", "/_search/scroll", map[string]any{"scroll": "1m", "scroll_id": id}, &p)
	}
	if p.ScrollID != "" {
		c.raw("DELETE", "/_search/scroll", map[string]any{"scroll_id": p.ScrollID})
	}
	return all
}

// byID indexes docs by id and requires that no id is stored twice (in two daily indexes).
func byID(t testing.TB, docs []doc) map[string]doc {
	t.Helper()
	m := make(map[string]doc, len(docs))
	for _, d := range docs {
		if prev, ok := m[d.ID]; ok {
			t.Fatalf("document %s is stored twice: in %s and %s", d.ID, prev.Index, d.Index)
		}
		m[d.ID] = d
	}
	return m
}

// search runs a search on pattern and returns the decoded response.
func (c *osClient) search(pattern string, body any) map[string]any {
	c.t.Helper()
	var r map[string]any
	c.do("POST", "/"+pattern+"/_search", body, &r)
	return r
}

// sum returns the sum of field over pattern.
func (c *osClient) sum(pattern, field string) float64 {
	c.t.Helper()
	r := c.search(pattern, map[string]any{"size": 0, "aggs": map[string]any{"s": map[string]any{"sum": map[string]any{"field": field}}}})
	v, ok := r["aggregations"].(map[string]any)["s"].(map[string]any)["value"].(float64)
	require.True(c.t, ok, "sum of %s over %s: %v", field, pattern, r)
	return v
}

// waitFor polls cond every interval until it holds or the deadline passes.
func waitFor(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval) // polling interval, bounded by the deadline
	}
}

// syncProducer returns a producer that waits for every replica and partitions with
// partitioner: sarama.NewHashPartitioner by key hash, as the telemetry producers the job
// expects do; sarama.NewManualPartitioner to each message's Partition, for a test that
// chooses where records go (a producer that does not key by cab, a late record's
// partition). It is closed when the test ends.
func syncProducer(t testing.TB, brokers []string, partitioner sarama.PartitionerConstructor) sarama.SyncProducer {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = partitioner
	// Idempotent, so that a send retried under load (CI) does not write a record twice:
	// the tests count what the job read (TestFaultStatusPage once saw 601 of 600 records,
	// the topic holding one of them twice).
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close() })
	return prod
}
