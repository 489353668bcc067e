package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeTB records how a helper ended the test; Skip and Fatal stop the helper with a panic.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

type stopped struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	panic(stopped{})
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic(stopped{})
}

func run(f *fakeTB, fn func(testing.TB)) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopped); !ok {
				panic(r)
			}
		}
	}()
	fn(f)
}

func TestMissingServiceSkipsOrFails(t *testing.T) {
	t.Setenv(EnvKafkaBrokers, "")
	t.Setenv(EnvOpenSearchURL, " ")
	t.Setenv(EnvSCRAMBrokers, "")

	t.Setenv(EnvRequire, "")
	for name, fn := range map[string]func(testing.TB){
		"kafka":      func(tb testing.TB) { KafkaBrokers(tb) },
		"opensearch": func(tb testing.TB) { OpenSearchURL(tb) },
		"scram":      func(tb testing.TB) { KafkaSCRAM(tb) },
	} {
		f := &fakeTB{}
		run(f, fn)
		if !f.skipped || f.failed || !strings.Contains(f.msg, "make services-up") {
			t.Errorf("%s without %s: skipped=%v failed=%v msg=%q", name, EnvRequire, f.skipped, f.failed, f.msg)
		}
	}

	t.Setenv(EnvRequire, "1")
	f := &fakeTB{}
	run(f, func(tb testing.TB) { KafkaBrokers(tb) })
	if !f.failed || f.skipped || !strings.Contains(f.msg, EnvKafkaBrokers) {
		t.Errorf("with %s=1: skipped=%v failed=%v msg=%q", EnvRequire, f.skipped, f.failed, f.msg)
	}
}

func TestAddressesFromEnvironment(t *testing.T) {
	t.Setenv(EnvKafkaBrokers, "127.0.0.1:1, 127.0.0.1:2,,")
	t.Setenv(EnvOpenSearchURL, "http://127.0.0.1:3/")
	t.Setenv(EnvSCRAMBrokers, "127.0.0.1:4")
	t.Setenv(EnvSCRAMUser, "u")
	t.Setenv(EnvSCRAMPassword, "p")
	t.Setenv(EnvSCRAMMechanism, "")
	if got := KafkaBrokers(t); len(got) != 2 || got[0] != "127.0.0.1:1" || got[1] != "127.0.0.1:2" {
		t.Errorf("KafkaBrokers = %q", got)
	}
	if got := OpenSearchURL(t); got != "http://127.0.0.1:3" {
		t.Errorf("OpenSearchURL = %q", got)
	}
	s := KafkaSCRAM(t)
	if len(s.Brokers) != 1 || s.User != "u" || s.Password != "p" || s.Mechanism != "SCRAM-SHA-512" {
		t.Errorf("KafkaSCRAM = %+v", s)
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	seen := map[string]bool{}
	for _, prefix := range []string{"orders", "My Topic/Ä.x", "", "--", "_idx", strings.Repeat("a", 400)} {
		for range 50 {
			n := UniqueName(t, prefix)
			if !valid.MatchString(n) || len(n) > 249 {
				t.Fatalf("UniqueName(%q) = %q: not a valid topic/index name", prefix, n)
			}
			if seen[n] {
				t.Fatalf("UniqueName(%q) repeated %q", prefix, n)
			}
			seen[n] = true
		}
	}
	if n := UniqueName(t, "Orders"); !strings.HasPrefix(n, "orders-") {
		t.Errorf("UniqueName(Orders) = %q", n)
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "testenv", "services.sh")); err != nil {
		t.Fatalf("RepoRoot = %q: %v", root, err)
	}
	if _, err := findRoot(string(filepath.Separator)); err == nil {
		t.Error("findRoot(/) found a go.mod")
	}
}

func TestUnknownServiceFails(t *testing.T) {
	f := &fakeTB{}
	run(f, func(tb testing.TB) { StopService(tb, "zookeeper") })
	if !f.failed || !strings.Contains(f.msg, "zookeeper") {
		t.Errorf("StopService(zookeeper): failed=%v msg=%q", f.failed, f.msg)
	}
}
