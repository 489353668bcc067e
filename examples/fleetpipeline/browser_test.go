// The live status page in a real browser: headless Chromium (testenv/chromium.sh installs
// Debian's package) driven with chromedp opens the page of a fleetpipeline running against
// the real Kafka and OpenSearch, checks its counters, charts and partition table against
// Kafka and OpenSearch, then stops OpenSearch and checks the failure banner and /readyz, and
// starts it again and checks recovery. Screenshots go to the artifacts directory.

package main

import (
	"context"
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
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// EnvArtifacts names the directory test artifacts (screenshots) are written to; default
// $TMPDIR/fleetstream-artifacts.
const EnvArtifacts = "FLEETSTREAM_TEST_ARTIFACTS"

var statusURL = regexp.MustCompile(`status=(http://[0-9.:]+/)\s`)

// chromium returns the path of a Chromium binary, skipping the test (failing it when the
// services are required, as in make test, which installs Chromium first) when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}
	if c := os.Getenv("FLEETSTREAM_CHROMIUM"); c != "" {
		names = []string{c}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "no Chromium on the PATH: run testenv/chromium.sh (make test does) or set FLEETSTREAM_CHROMIUM"
	if testenv.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func artifactDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv(EnvArtifacts)
	if d == "" {
		d = filepath.Join(os.TempDir(), "fleetstream-artifacts")
	}
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}

// page drives one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

func newPage(t *testing.T, url string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)), "open %s", url)
	return &page{t: t, ctx: ctx}
}

// waitJS polls expr in the page until it is truthy or timeout passes; on a timeout it fails
// the test with what the page shows.
func (p *page) waitJS(what, expr string, timeout time.Duration) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage: %s", what, expr, err, p.text("document.querySelector('main').innerText"))
	}
}

func (p *page) text(expr string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	require.NoError(p.t, err, expr)
	return s
}

func (p *page) number(id string) int64 {
	p.t.Helper()
	s := p.text(`document.getElementById(` + strconv.Quote(id) + `).textContent`)
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	require.NoError(p.t, err, "#%s shows %q", id, s)
	return n
}

func (p *page) screenshot(name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err)
	path := filepath.Join(artifactDir(p.t), name)
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	p.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

// partitionRow is a row of the page's partition table.
type partitionRow struct {
	Name      string `json:"name"`
	Read      string `json:"read"`
	Committed string `json:"committed"`
	End       string `json:"end"`
	ReadLag   string `json:"readLag"`
	CommitLag string `json:"lag"`
	HeldBack  string `json:"heldBack"`
	Watermark string `json:"watermark"`
	Idle      string `json:"idle"`
}

func (p *page) partitions() []partitionRow {
	p.t.Helper()
	rows, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]partitionRow](`[...document.querySelectorAll('#partitions tbody tr')].map(tr => ({
		name: tr.dataset.partition,
		read: tr.querySelector('[data-col=read]').textContent,
		committed: tr.querySelector('[data-col=committed]').textContent,
		end: tr.querySelector('[data-col=end]').textContent,
		readLag: tr.querySelector('[data-col=read-lag]').textContent,
		lag: tr.querySelector('[data-col=commit-lag]').textContent,
		heldBack: tr.querySelector('[data-col=held-back]').textContent,
		watermark: tr.querySelector('[data-col=watermark]').textContent,
		idle: tr.querySelector('[data-col=idle]').textContent}))`))
	require.NoError(p.t, err)
	return rows
}

// telemetry returns n valid events of six cabs, one second apart from base.
func telemetryMessages(topic string, base time.Time, n int) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := range n {
		cab := fmt.Sprintf("CAB-B%d", i%6)
		v := fmt.Sprintf(`{"cab_id":%q,"ts":%q,"lat":41.15,"lon":-8.61,"speed_kmh":40,"status":"hired"}`,
			cab, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(cab), Value: sarama.StringEncoder(v)})
	}
	return msgs
}

// endOffsets returns each partition's high-water mark, by "topic/partition".
func endOffsets(t *testing.T, brokers []string, topic string) map[string]int64 {
	t.Helper()
	c, err := sarama.NewClient(brokers, sarama.NewConfig())
	require.NoError(t, err)
	defer c.Close()
	parts, err := c.Partitions(topic)
	require.NoError(t, err)
	out := make(map[string]int64, len(parts))
	for _, part := range parts {
		off, err := c.GetOffset(topic, part, sarama.OffsetNewest)
		require.NoError(t, err)
		out[fmt.Sprintf("%s/%d", topic, part)] = off
	}
	return out
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestFaultStatusPage(t *testing.T) {
	testenv.FaultTest(t)
	s := needServices(t)
	chromium(t) // skip or fail before anything is started
	topic := testenv.UniqueName(t, "e2e-browser")
	r := newRun(t, s, topic, "e2e-browser")
	brokers := testenv.KafkaBrokers(t)
	prod := syncProducer(t, brokers, sarama.NewHashPartitioner)

	// 600 events over ten minutes of event time an hour ago, and three undecodable records.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	msgs := telemetryMessages(topic, base, 600)
	for range 3 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("CAB-B0"), Value: sarama.StringEncoder("not json")})
	}
	require.NoError(t, prod.SendMessages(msgs))
	ends := endOffsets(t, brokers, topic)

	// Runs until stopped (the last -exit-when-idle wins).
	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "0")...)
	var url string
	waitFor(t, time.Minute, 50*time.Millisecond, "the status page address in the log", func() bool {
		m := statusURL.FindStringSubmatch(p.out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil || p.exited()
	})
	require.NotEmpty(t, url, "no status address logged")

	pg := newPage(t, url)
	// Counters: every decodable record in, the undecodable ones in the dead letters.
	pg.waitJS("600 records in", `document.getElementById('records').textContent === '600'`, time.Minute)
	pg.waitJS("3 dead letters", `document.getElementById('dead-letters').textContent === '3'`, 30*time.Second)
	pg.waitJS("the ready badge", `document.getElementById('ready').textContent === 'ready'`, 30*time.Second)
	require.Equal(t, "alive", pg.text(`document.getElementById('health').textContent`))
	// Six partitions of the topic and six of the zone demand's repartition topic.
	require.Equal(t, "12", pg.text(`document.getElementById('partitions-count').textContent`))
	require.Empty(t, pg.text(`document.getElementById('banner').textContent`))
	require.Positive(t, pg.number("batches"))

	// Partition table: six partitions of the topic (named topic/partition) and six of the
	// zone demand's repartition topic; committed plus commit lag is each input partition's
	// end offset in Kafka, once the windows' commits have moved.
	pg.waitJS("twelve partitions", `document.querySelectorAll('#partitions tbody tr').length === 12`, 30*time.Second)
	repartition := r.group + "-zones-repartition/"
	sourceRows := func() []partitionRow {
		var rows []partitionRow
		for _, row := range pg.partitions() {
			if !strings.HasPrefix(row.Name, repartition) {
				rows = append(rows, row)
			}
		}
		require.Len(t, rows, 6, "the input topic's partitions")
		return rows
	}
	waitFor(t, time.Minute, 200*time.Millisecond, "the end offsets of Kafka in the partition table", func() bool {
		rows := sourceRows()
		ok := len(rows) == len(ends)
		for _, row := range rows {
			want, known := ends[row.Name]
			require.True(t, known, "partition %q is not one of %v", row.Name, ends)
			if want > 0 && row.End != strconv.FormatInt(want, 10) {
				ok = false
			}
		}
		return ok
	})
	for _, row := range sourceRows() {
		c, err1 := strconv.ParseInt(strings.ReplaceAll(row.Committed, ",", ""), 10, 64)
		l, err2 := strconv.ParseInt(strings.ReplaceAll(row.CommitLag, ",", ""), 10, 64)
		if ends[row.Name] == 0 {
			continue
		}
		require.NoError(t, err1, "%+v", row)
		require.NoError(t, err2, "%+v", row)
		require.LessOrEqual(t, c, ends[row.Name], "%+v", row)
		require.Equal(t, ends[row.Name]-c, l, "%+v", row)
		// Caught up: commit lag = read lag + held back (read, kept by the open windows), and
		// everything is read, the partition's 3 undecodable records at its end included (the
		// source's read offset, SourceStats.Read, counts what it dead-lettered).
		r, err3 := strconv.ParseInt(strings.ReplaceAll(row.Read, ",", ""), 10, 64)
		rl, err4 := strconv.ParseInt(strings.ReplaceAll(row.ReadLag, ",", ""), 10, 64)
		h, err5 := strconv.ParseInt(strings.ReplaceAll(row.HeldBack, ",", ""), 10, 64)
		require.NoError(t, errors.Join(err3, err4, err5), "%+v", row)
		require.Equal(t, l, rl+h, "%+v", row)
		require.Zero(t, rl, "%+v", row)
		require.Equal(t, ends[row.Name], r+rl, "%+v", row)
		require.NotEqual(t, "–", row.Watermark, "%+v", row)
		require.Contains(t, []string{"no", "idle", "ended"}, row.Idle, "%+v", row)
	}

	// Charts: a line per series, with a point per batch of the history.
	pg.waitJS("rate and duration charts", `document.querySelector('#chart-durations polyline[data-series="batch duration"]').dataset.points >= 2 &&
		document.querySelector('#chart-rates polyline[data-series="input"]').dataset.points >= 1 &&
		document.querySelector('#chart-rates polyline[data-series="process"]').getAttribute('points').length > 0`, 30*time.Second)

	// Outputs: the cab-stats sink created what OpenSearch holds, and is healthy.
	osc := newOS(t, s)
	waitFor(t, time.Minute, 200*time.Millisecond, "cab-stats created on the page = documents in OpenSearch", func() bool {
		osc.refresh(r.index("cab-stats"))
		n := osc.count(r.index("cab-stats"))
		shown := pg.text(`document.querySelector('#sinks tr[data-sink="cab-stats"] [data-col=created]').textContent`)
		return n > 0 && shown == strconv.FormatInt(n, 10)
	})
	require.Equal(t, "ok", pg.text(`document.querySelector('#sinks tr[data-sink="cab-stats"] [data-col=health]').textContent`))
	pg.screenshot("fleetpipeline-status-healthy.png")

	// Outage: OpenSearch stops, and later events close windows that must be written.
	testenv.StopService(t, "opensearch")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			testenv.StartService(t, "opensearch")
		}
	})
	outageStart := time.Now()
	require.NoError(t, prod.SendMessages(telemetryMessages(topic, base.Add(15*time.Minute), 120)))
	pg.waitJS("the failure banner", `document.getElementById('banner').classList.contains('show') &&
		document.getElementById('banner').textContent.startsWith('OpenSearch unreachable since ')`, time.Minute)
	code, body := httpGet(t, url+"readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "failing since")
	require.Contains(t, body, "connection refused")
	code, body = httpGet(t, url+"healthz")
	require.Equal(t, http.StatusOK, code, "the run loop turns during the outage: %s", body)
	require.Equal(t, "not ready", pg.text(`document.getElementById('ready').textContent`))
	require.Contains(t, pg.text(`document.querySelector('#sinks tr.failing [data-col=health]').textContent`), "failing since")
	// The sink gives up after its own attempts, and the run loop retries the batch.
	pg.waitJS("the batch retrying in the banner", `/batch \d+ retrying, attempt \d+$/.test(document.getElementById('banner').textContent)`, 2*time.Minute)
	banner := pg.text(`document.getElementById('banner').textContent`)
	t.Logf("banner after %v of outage: %s", time.Since(outageStart).Round(time.Second), banner)
	code, body = httpGet(t, url+"readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Regexp(t, `batch \d+ outputs failing since`, body)
	code, _ = httpGet(t, url+"healthz")
	require.Equal(t, http.StatusOK, code)
	pg.screenshot("fleetpipeline-status-outage.png")

	// Recovery: the banner goes, /readyz is ready again, the new records are in.
	testenv.StartService(t, "opensearch")
	stopped = false
	pg.waitJS("the banner gone and ready again", `!document.getElementById('banner').classList.contains('show') &&
		document.getElementById('ready').textContent === 'ready'`, 2*time.Minute)
	pg.waitJS("720 records in", `document.getElementById('records').textContent === '720'`, time.Minute)
	code, body = httpGet(t, url+"readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "ok", pg.text(`document.querySelector('#sinks tr[data-sink="cab-stats"] [data-col=health]').textContent`))
	pg.screenshot("fleetpipeline-status-recovered.png")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	p.succeed(t, time.Minute)
}
