// The job's start: flag values that make no sense are refused at start, naming the flag,
// before the job connects to Kafka or OpenSearch (helper-86's review found them getting
// through). Offline: the brokers and OpenSearch are a closed loopback port, so a value that
// got past the checks would show as a connection error instead of the flag's name.

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func offlineArgs(t *testing.T, extra ...string) []string {
	dead := deadAddr(t)
	return append([]string{"-brokers", dead, "-opensearch", "http://" + dead, "-http="}, extra...)
}

// TestBadFlagsRefusedAtStart: each value is refused by run before it connects, with
// an error naming the flag, and the job exits 2 with it, as for the flag package's own
// errors. -batch, -max-batch, -concurrent-outputs, -out-of-order and -name got through to the
// library, which refused them in its options' words ("WithBuffer(0, 67108864): records must
// be > 0", "batch interval 0s"), naming no flag, exit 1.
func TestBadFlagsRefusedAtStart(t *testing.T) {
	for _, tc := range []struct{ flag, value string }{
		{"-batch", "0s"},
		{"-batch", "-1s"},
		{"-max-batch", "0"},
		{"-max-batch", "-5"},
		{"-concurrent-outputs", "0"},
		{"-out-of-order", "-1s"},
		{"-name", ""},
		{"-name", " "},
		{"-stats-window", "0s"},
		{"-stats-window", "-1m"},
		{"-zone-window", "0s"},
		{"-lateness", "-5s"},
		{"-pickup-within", "-1s"},
		{"-session-timeout", "-1s"},
		{"-kafka-timeout", "0s"},
		{"-opensearch-timeout", "0s"},
		{"-shutdown-timeout", "0s"},
		{"-shutdown-timeout", "500ms"},
		// Refused by the library after the dead-letter topic was made, in its words
		// ("Rebalance.SessionTimeout", "Rebalance.InstanceID"), naming no flag, exit 1.
		{"-session-timeout", "500ms"},
		{"-group-instance-id", "fleet/pod-0"},
		// 241 characters: 250 for the requests source's member (".requests"), past Kafka's 249.
		{"-group-instance-id", strings.Repeat("p", 241)},
		{"-exit-when-idle", "-5s"}, // was never refused: a negative idle ran for ever
		{"-status-every", "-1s"},   // was never refused: no status line
		{"-replicas", "-1"},
		{"-max-cabs", "-1"}, // was refused after connecting, as "WithMaxKeys(-4)"
		// 4 * -max-cabs, each window operator's key limit, overflowed: 2^62 made it 0 (no
		// limit), 3e18 negative (refused after connecting, as "WithMaxKeys(-6446744073709551616)").
		{"-max-cabs", "4611686018427387904"},
		{"-max-cabs", "3000000000000000000"},
		{"-gc-percent", "-1"}, // turned the collector off: the heap grew until killed
		{"-procs", "-1"},
		// runtime.GOMAXPROCS takes an int32: 2^32 became 0 and 2^31 negative, and the
		// runtime threw "procresize: invalid arg" (exit 2, naming no flag); far fewer made it
		// allocate a P for each, gigabytes for a million.
		{"-procs", "4294967296"},
		{"-procs", "2147483648"},
		{"-procs", "1000000"},
		{"-topic", ""}, // EnsureTopic(".dlq") made a topic named ".dlq"
		{"-group", ""},
		// Not Kafka topic names, or too long for the ones the job makes from them (<topic>.dlq,
		// <group>-pickups-repartition): refused after the dead-letter topic was made, or when
		// making it, naming no flag, exit 1.
		{"-topic", "cab telemetry"},
		{"-topic", strings.Repeat("t", 246)},
		{"-group", "fleet:prod"},
		{"-group", strings.Repeat("g", 230)},
		{"-alerts-topic", "fleet/alerts"},
		{"-requests-topic", "ride requests"},
		{"-registry-topic", "fleet,registry"},
		// Kafka's exception among names of its characters: refused by the brokers after the
		// job connected, naming no flag.
		{"-topic", "."},
		{"-alerts-topic", ".."},
		{"-requests-topic", "."},
		{"-registry-topic", ".."},
		{"-http", "9464"}, // no port: net.Listen refused it after the job had connected
		{"-http", "localhost"},
		{"-http", "127.0.0.1:99999"}, // a port past 65535: refused by net.Listen only after the job had connected
		// Conflicts: alerts written into the telemetry topic itself; the requests source in
		// the same group on the same topic as the telemetry source (the group splits the
		// topic's partitions between the two members, each decoding the other's records).
		{"-alerts-topic", "cab-telemetry"},
		{"-requests-topic", "cab-telemetry"},
		{"-index-tag", "Bad Tag"},
		{"-opensearch-sigv4", "s3"}, // exited 1, as a failure of the run
	} {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			c := testConfig(t, offlineArgs(t, tc.flag+"="+tc.value)...)
			var out bytes.Buffer
			err := run(t.Context(), c, &out)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.flag, "the error should name the flag, not a connection failure")
			require.NotContains(t, err.Error(), "connect", "refused before connecting")

			cmd := exec.Command(pipelineBin, offlineArgs(t, tc.flag+"="+tc.value)...)
			stderr, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "got:\n%s", stderr)
			require.Equal(t, 2, ee.ExitCode(), "got:\n%s", stderr)
			require.Contains(t, string(stderr), "fleetpipeline: "+tc.flag, "the job names the flag")
			require.NotContains(t, string(stderr), "connect", "refused before connecting")
		})
	}
}

// TestOutputAsInputRefusedAtStart: an output of the job given as one of its inputs is refused
// before the job connects, naming the flag. They got through: the dead-letter topic read as
// ride requests sent every dead letter back to itself for ever (each fails to decode as a
// request), and alerts read as requests were each a dead letter.
func TestOutputAsInputRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-requests-topic", "cab-telemetry.dlq"}, "-topic"},
		{[]string{"-registry-topic", "cab-telemetry.dlq"}, "-topic"},
		{[]string{"-topic", "t", "-alerts-topic", "t.dlq"}, "-topic"},
		{[]string{"-requests-topic", "rides", "-alerts-topic", "rides"}, "-alerts-topic"},
		{[]string{"-registry-topic", "fleet", "-alerts-topic", "fleet"}, "-alerts-topic"},
		// Not an output as an input, but a pair refused the same way: package kafka refuses
		// WithBounded beside WithEndWhenCaughtUp, after the dead-letter topic was made,
		// naming options, not flags.
		{[]string{"-bounded", "-exit-when-idle", "2s"}, "-bounded"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := testConfig(t, offlineArgs(t, tc.args...)...)
			err := run(t.Context(), c, io.Discard)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.flag+": ", "the error should name the flag, not a connection failure")
			require.NotContains(t, err.Error(), "connect", "refused before connecting")
		})
	}
}

// TestPositionalArgumentRefused: "-zone-demand false" (a boolean flag given a separate value,
// as every other flag takes one) set zone demand on and, "false" being an argument, ended flag
// parsing: every flag after it was ignored (here an -index-tag the job refuses). The job now
// refuses the argument (exit 2) and says how boolean flags take a value.
func TestPositionalArgumentRefused(t *testing.T) {
	cmd := exec.Command(pipelineBin, offlineArgs(t, "-zone-demand", "false", "-index-tag", "Bad Tag")...)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `unexpected argument "false"`, "got:\n%s", out)
	require.Contains(t, string(out), "-flag=false")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.ExitCode())
}

// TestStopDuringStartupIsClean: a SIGTERM (ctx cancelled) while the job is still starting
// (here: waiting for a broker that accepted the connection but does not answer) is a clean
// stop, nothing read or acknowledged: run returns nil, as for a stop while running (it
// returned "dead-letter topic: context canceled", exit 1).
func TestStopDuringStartupIsClean(t *testing.T) {
	broker, accepted := testenv.SilentListener(t)
	c := testConfig(t, "-brokers", broker, "-opensearch", "http://"+deadAddr(t), "-http=")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(ctx, c, &out) }()
	<-accepted // the job is now waiting on Kafka
	cancel()
	err := <-done
	require.NoError(t, err, "a stop during startup should exit 0 like a stop while running")
}

// TestStopBeforeEndFails: a run that ends by itself (-bounded, -exit-when-idle) exits 0 once
// it read its input and wrote every window, so a stop (SIGINT, SIGTERM) before that, here
// while it is still starting, must fail the run: it returned nil (exit 0), and a scheduler
// took the interrupted backfill for done.
func TestStopBeforeEndFails(t *testing.T) {
	for _, flag := range []string{"-bounded", "-exit-when-idle=1h"} {
		t.Run(flag, func(t *testing.T) {
			broker, accepted := testenv.SilentListener(t)
			c := testConfig(t, "-brokers", broker, "-opensearch", "http://"+deadAddr(t), "-http=", flag)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			var out bytes.Buffer
			go func() { done <- run(ctx, c, &out) }()
			<-accepted // the job is now waiting on Kafka
			cancel()
			err := <-done
			require.Error(t, err, "a stop before the input ended must not exit 0")
			require.Contains(t, err.Error(), "before the input ended ("+strings.SplitN(flag, "=", 2)[0]+")")
		})
	}
}

// TestHelpHidesURLPassword: a FLEETSTREAM_OPENSEARCH_URL whose password holds a character
// that is not escaped ('/', '#', '?': common in generated passwords) is not a URL url.Parse
// reads; -h printed it whole, password included, as the default of -opensearch.
func TestHelpHidesURLPassword(t *testing.T) {
	for _, pw := range []string{"s3cr/et", "s3cr#et", "s3cr?et"} {
		cmd := exec.Command(pipelineBin, "-h")
		cmd.Env = append(cmd.Environ(), "FLEETSTREAM_OPENSEARCH_URL=https://admin:"+pw+"@opensearch.example:9200")
		out, _ := cmd.CombinedOutput()
		require.Contains(t, string(out), "-opensearch")
		require.False(t, strings.Contains(string(out), pw), "-h prints the password %q:\n%s", pw, grepLine(string(out), "opensearch.example"))
	}
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestHTTPPortInUse: an -http address already in use fails run's metrics
// server with an error naming the flag and the address.
func TestHTTPPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	m, err := newMetrics("x", &partitionNames{})
	require.NoError(t, err)
	stop, err := serveMetrics(t.Context(), ln.Addr().String(), m, logger(io.Discard, false))
	require.Error(t, err)
	require.Nil(t, stop)
	require.Contains(t, err.Error(), "-http "+ln.Addr().String())
	require.Contains(t, err.Error(), "address already in use")
}

// TestMemProfilePathCheckedAtStart: -memprofile was opened only when the run ended, so an
// unwritable path was found after the whole run (a backfill, committed) and turned its exit
// status to 1. It is refused before the job connects.
func TestMemProfilePathCheckedAtStart(t *testing.T) {
	bad := t.TempDir() + "/missing/dir/mem.prof"
	out, err := exec.Command(pipelineBin, offlineArgs(t, "-memprofile", bad)...).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), bad)
	require.NotContains(t, string(out), "connect", "the bad path should be refused before connecting; got:\n%s", out)
}

// TestProfilePathNamesFlag: a -cpuprofile or -memprofile that cannot be written was refused
// as "fleetpipeline: open <path>: no such file or directory", exit 1, as a failed run; it
// names its flag now and exits 2, as the job's other command-line errors do.
func TestProfilePathNamesFlag(t *testing.T) {
	for _, flag := range []string{"-cpuprofile", "-memprofile"} {
		t.Run(flag, func(t *testing.T) {
			bad := t.TempDir() + "/missing/dir/x.prof"
			out, err := exec.Command(pipelineBin, offlineArgs(t, flag, bad)...).CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "got:\n%s", out)
			require.Equal(t, 2, ee.ExitCode(), "got:\n%s", out)
			require.Contains(t, string(out), "fleetpipeline: "+flag+": ", "the job names the flag")
			require.Contains(t, string(out), bad)
			require.NotContains(t, string(out), "connect", "refused before connecting")
		})
	}
}

// TestSameProfilePathRefused: -cpuprofile and -memprofile on one path were both opened on
// it, and the allocation profile, written when the run ended, overwrote the start of the
// CPU profile: a whole run's profiles lost. It is refused at start, naming the flag.
func TestSameProfilePathRefused(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(t, offlineArgs(t, "-cpuprofile", dir+"/run.prof", "-memprofile", dir+"/./run.prof")...)
	err := run(t.Context(), c, io.Discard)
	require.Error(t, err)
	require.Contains(t, err.Error(), "-memprofile")
	require.Contains(t, err.Error(), "-cpuprofile")
	require.NotContains(t, err.Error(), "connect", "refused before connecting")
}

// TestAlertsTopicUnusedWithAlertsOff: with -alerts=false the job writes no alerts, so
// -alerts-topic names no topic it uses: its checks refused a run over it (-alerts=false with
// the default cab-alerts as -registry-topic) for a topic the run would never touch.
func TestAlertsTopicUnusedWithAlertsOff(t *testing.T) {
	for _, args := range [][]string{
		{"-alerts-topic", "fleet/alerts"},
		{"-alerts-topic", "cab-telemetry"},
		{"-registry-topic", "cab-alerts"}, // the default -alerts-topic
		{"-requests-topic", "cab-alerts"},
		{"-alerts-topic", "cab-telemetry.dlq"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := testConfig(t, offlineArgs(t, append([]string{"-alerts=false"}, args...)...)...)
			require.NoError(t, c.validate())
			c = testConfig(t, offlineArgs(t, args...)...)
			require.ErrorContains(t, c.validate(), "-alerts-topic", "with alerts on, the topic is checked")
		})
	}
}

// TestMemProfileLeftAloneWhenStartFails: -memprofile was created (truncated) at start, before
// -cpuprofile was checked, so a -cpuprofile that cannot be written left an empty allocation
// profile behind, or emptied the one an earlier run had written there.
func TestMemProfileLeftAloneWhenStartFails(t *testing.T) {
	dir := t.TempDir()
	badCPU := dir + "/missing/dir/cpu.prof"
	mem := dir + "/mem.prof"
	out, err := exec.Command(pipelineBin, offlineArgs(t, "-memprofile", mem, "-cpuprofile", badCPU)...).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "fleetpipeline: -cpuprofile: ")
	require.NoFileExists(t, mem, "the run wrote no profile: none is left behind")

	earlier := []byte("an earlier run's profile")
	require.NoError(t, os.WriteFile(mem, earlier, 0o644))
	out, err = exec.Command(pipelineBin, offlineArgs(t, "-memprofile", mem, "-cpuprofile", badCPU)...).CombinedOutput()
	require.Error(t, err, "got:\n%s", out)
	got, err := os.ReadFile(mem)
	require.NoError(t, err)
	require.Equal(t, earlier, got, "the earlier profile is kept")
}

// TestStatusEveryZeroDocumented: -status-every 0 runs without a status line, which the flag's
// help did not say ("how often to print the status line"): a user who set it saw nothing and
// could not tell a silent job from a hung one.
func TestStatusEveryZeroDocumented(t *testing.T) {
	out, _ := exec.Command(pipelineBin, "-h").CombinedOutput()
	_, help, ok := strings.Cut(string(out), "-status-every duration\n")
	require.True(t, ok, "no -status-every in:\n%s", out)
	help, _, _ = strings.Cut(help, "\n  -")
	require.Contains(t, help, "(0: none)", "-status-every's help says what 0 does:\n%s", help)
}

// TestLongTopicFlagQuotedByItsStart: a topic flag of 10,000 characters is refused in a line
// that quotes its start and gives its length (kafka.CheckTopic's words); the job quoted the
// whole value before kafka's error, a 10 KB line.
func TestLongTopicFlagQuotedByItsStart(t *testing.T) {
	for _, flag := range []string{"-topic", "-group"} {
		c := testConfig(t, offlineArgs(t, flag+"="+strings.Repeat("t", 10_000))...)
		err := run(t.Context(), c, io.Discard)
		require.ErrorContains(t, err, flag)
		require.ErrorContains(t, err, "characters")
		require.Less(t, len(err.Error()), 1000, "%s: %s", flag, err)
	}
}
