package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/shardtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestMain starts two PostgreSQL servers for the command's tests; without them the tests
// fail, saying what to install.
func TestMain(m *testing.M) {
	os.Exit(shardtest.Main(m, 2, func() error { return goleak.Find() }))
}

// result is one run of the command.
type result struct {
	stdout, stderr string
	code           int
}

// bunshard runs the command with args and env as its whole environment.
func bunshard(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut strings.Builder
	code := run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return result{out.String(), errOut.String(), code}
}

// want fails the test unless the run exited with code.
func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d; want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

var (
	portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	dbRE   = regexp.MustCompile(`\b([a-z]+)_[0-9a-f]{8}_(\d+)\b`)
)

// normalize replaces what differs between runs: ports and database-name suffixes.
func normalize(s string) string {
	s = portRE.ReplaceAllString(s, "127.0.0.1:PORT")
	return dbRE.ReplaceAllString(s, "${1}_X_$2")
}

// golden compares got, normalized, with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = normalize(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// fleetConfig writes a config file naming shards a and b (fresh databases on the two
// servers) after extra (top-level keys or tables), and returns its path and the DSNs.
func fleetConfig(t *testing.T, extra string) (string, []string) {
	t.Helper()
	dsns := shardtest.Shared().NewDatabases(t.Context(), t, "cli")
	cfg := fmt.Sprintf("%s\n[[shard]]\nname = \"a\"\ndsn = %q\n\n[[shard]]\nname = \"b\"\ndsn = %q\n", extra, dsns[0], dsns[1])
	path := filepath.Join(t.TempDir(), "bunshard.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, dsns
}

// writeFiles writes name -> content files into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
