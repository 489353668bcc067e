package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestMakeDemo runs the steps of `make demo` (examples/demo.sh) against the real services, on
// a topic, group and index tag of its own and a smaller simulated fleet, and checks the
// summary it prints.
func TestMakeDemo(t *testing.T) {
	testenv.KafkaBrokers(t)
	testenv.OpenSearchURL(t)
	root := testenv.RepoRoot(t)
	tag := testenv.UniqueName(t, "demo")
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join(root, "examples", "demo.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DEMO_TOPIC="+tag, "DEMO_GROUP="+tag, "DEMO_INDEX_TAG="+tag, "DEMO_SIM_EVENTS=100000")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	require.NoError(t, err, text)

	num := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		require.NotNil(t, m, "%s not in the demo's output:\n%s", re, text)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 47_304, num(`porto: (\d+) events from 308 cabs`))
	require.Equal(t, 147_304, num(`fleetpipeline: consumed (\d+) records`), "Porto plus the simulated fleet")
	dead := num(`(\d+) dead letters`)
	require.Positive(t, dead, "the simulated fleet injects malformed messages")
	for _, idx := range []string{"cab-stats", "zone-demand", "cab-alerts"} {
		require.Positive(t, num(idx+`-`+regexp.QuoteMeta(tag)+`-\*\s+(\d+)`), idx)
	}
	require.Len(t, regexp.MustCompile(`(?m)^  ez\w{4}\s+\d+\.\d events$`).FindAllString(text, -1), 5, "five busiest zones")
	require.Len(t, regexp.MustCompile(`(?m)^  \S+\s+\d+\.\d km/h$`).FindAllString(text, -1), 5, "five fastest cabs")
	require.Regexp(t, `(?m)^  (speeding|harsh_braking|long_idle|device_silent)\s+\d+$`, text, "alerts by type")
	require.Contains(t, text, "Look at the data:")
}
