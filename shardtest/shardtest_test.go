package shardtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := Main(m, 2)
	if code == 0 {
		// Every Set is closed by now: no reaper goroutine, pool or timer may remain.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// open returns a database handle for dsn, closed when the test ends.
func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithTimeout(5*time.Second)))
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// exec1 runs query on dsn over a fresh connection, failing the test on error.
func exec1(t *testing.T, dsn, query string) {
	t.Helper()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithTimeout(5*time.Second)))
	defer db.Close()
	// Not t.Context(): exec1 also runs in cleanups, after that context is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, query); err != nil {
		t.Fatalf("exec %q on %s: %v", query, dsn, err)
	}
}

// count returns the result of a count query on dsn over a fresh connection.
func count(ctx context.Context, dsn, query string) (int, error) {
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithTimeout(5*time.Second)))
	defer db.Close()
	var n int
	err := db.QueryRowContext(ctx, query).Scan(&n)
	return n, err
}

// dbName returns the database named in dsn.
func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN %q: %v", dsn, err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// needOwnServers skips tests that stop, kill or copy servers when they come from
// BUNSHARD_TEST_PG, saying why: such servers are not ours to stop.
func needOwnServers(t *testing.T) *Set {
	t.Helper()
	set := Shared()
	if set.External() {
		t.Skipf("servers come from %s and cannot be stopped or replicated; unset it to run this test", EnvVar)
	}
	return set
}

func TestServersAreSeparate(t *testing.T) {
	set := Shared()
	if set.Len() != 2 {
		t.Fatalf("Len() = %d; want 2", set.Len())
	}
	s0, s1 := set.Server(0), set.Server(1)
	if !set.External() {
		if s0.Port() == s1.Port() {
			t.Fatalf("both servers on port %d; want separate ports", s0.Port())
		}
		if s0.DataDir() == s1.DataDir() {
			t.Fatalf("both servers in %s; want separate data directories", s0.DataDir())
		}
	}
	for _, s := range set.Servers() {
		got, err := count(t.Context(), s.DSN(""), "SELECT inet_server_port()")
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got != s.Port() {
			t.Errorf("%s: inet_server_port() = %d; want Port() = %d", s, got, s.Port())
		}
		if !s.Running() {
			t.Errorf("%s: Running() = false; want true", s)
		}
	}
	if set.External() {
		return
	}
	// A table made on one server's postgres database is absent from the other's.
	table := fmt.Sprintf("separate_%d", time.Now().UnixNano())
	exec1(t, s0.DSN(""), "CREATE TABLE "+table+" (id int)")
	t.Cleanup(func() { exec1(t, s0.DSN(""), "DROP TABLE "+table) })
	q := "SELECT count(*) FROM pg_class WHERE relname = '" + table + "'"
	if n, err := count(t.Context(), s0.DSN(""), q); err != nil || n != 1 {
		t.Fatalf("%s: table count = %d, %v; want 1", s0, n, err)
	}
	if n, err := count(t.Context(), s1.DSN(""), q); err != nil || n != 0 {
		t.Fatalf("%s: table count = %d, %v; want 0 (written on %s only)", s1, n, err, s0)
	}
}

func TestConfiguration(t *testing.T) {
	set := needOwnServers(t)
	db := open(t, set.Server(0).DSN(""))
	for name, want := range map[string]string{
		"fsync":                     "off",
		"synchronous_commit":        "off",
		"full_page_writes":          "off",
		"max_prepared_transactions": "64",
		"max_connections":           "100",
		"wal_level":                 "replica",
		"hot_standby":               "on",
		"listen_addresses":          "127.0.0.1",
		"server_version_num":        "", // only printed
	} {
		var got string
		if err := db.QueryRowContext(t.Context(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatalf("current_setting(%q): %v", name, err)
		}
		if want != "" && got != want {
			t.Errorf("current_setting(%q) = %q; want %q", name, got, want)
		}
	}
}

func TestNewDatabasesIsolation(t *testing.T) {
	set := Shared()
	var first []string
	t.Run("create", func(t *testing.T) {
		a := set.NewDatabases(t.Context(), t, "Iso-Test")
		b := set.NewDatabases(t.Context(), t, "Iso-Test")
		if len(a) != set.Len() || len(b) != set.Len() {
			t.Fatalf("NewDatabases returned %d and %d DSNs; want %d", len(a), len(b), set.Len())
		}
		for i := range a {
			if a[i] == b[i] {
				t.Fatalf("two NewDatabases calls both gave %s", a[i])
			}
			if !strings.HasPrefix(dbName(t, a[i]), "iso_test_") {
				t.Errorf("database name %q; want prefix iso_test_", dbName(t, a[i]))
			}
			exec1(t, a[i], "CREATE TABLE t (id int)")
			exec1(t, a[i], "INSERT INTO t VALUES (1)")
			if _, err := count(t.Context(), b[i], "SELECT count(*) FROM t"); err == nil {
				t.Errorf("table t made in %s is visible in %s", a[i], b[i])
			}
			if n, err := count(t.Context(), a[i], "SELECT count(*) FROM t"); err != nil || n != 1 {
				t.Errorf("count(*) in %s = %d, %v; want 1", a[i], n, err)
			}
		}
		first = a
	})
	// The subtest's cleanup dropped its databases.
	for i, dsn := range first {
		name := dbName(t, dsn)
		n, err := count(t.Context(), set.Server(i).DSN(""), "SELECT count(*) FROM pg_database WHERE datname = '"+name+"'")
		if err != nil || n != 0 {
			t.Errorf("database %s after cleanup: count = %d, %v; want dropped", name, n, err)
		}
	}
}

func TestStopStart(t *testing.T) {
	set := needOwnServers(t)
	s := set.Server(1)
	dsn := set.NewDatabases(t.Context(), t, "stopstart")[1]
	exec1(t, dsn, "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")
	port := s.Port()

	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if s.Running() {
		t.Fatalf("Running() after Stop = true; want false")
	}
	if _, err := count(t.Context(), dsn, "SELECT count(*) FROM t"); err == nil {
		t.Fatalf("query on stopped %s succeeded; want an error", s)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop = %v; want nil", err)
	}
	// The other server is not affected.
	if _, err := count(t.Context(), set.Server(0).DSN(""), "SELECT 1"); err != nil {
		t.Fatalf("%s while %s is stopped: %v", set.Server(0), s, err)
	}

	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if s.Port() != port {
		t.Errorf("Port() after restart = %d; want %d", s.Port(), port)
	}
	if n, err := count(t.Context(), dsn, "SELECT count(*) FROM t"); err != nil || n != 2 {
		t.Fatalf("count(*) after restart = %d, %v; want 2", n, err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start of a running server = %v; want nil", err)
	}
}

func TestKillStart(t *testing.T) {
	set := needOwnServers(t)
	s := set.Server(0)
	dsn := set.NewDatabases(t.Context(), t, "kill")[0]
	// With synchronous_commit=off, the servers' default, a crash may lose the latest commits.
	exec1(t, dsn, "SET synchronous_commit = on; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")

	// A session open at the time of the crash sees its connection die.
	db := open(t, dsn)
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if s.Running() {
		t.Fatalf("Running() after Kill = true; want false")
	}
	if err := s.Kill(); err == nil {
		t.Fatalf("Kill of a killed server = nil; want an error")
	}
	if _, err := count(t.Context(), dsn, "SELECT count(*) FROM t"); err == nil {
		t.Fatalf("query on killed %s succeeded; want an error", s)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start after Kill: %v", err)
	}
	if n, err := count(t.Context(), dsn, "SELECT count(*) FROM t"); err != nil || n != 100 {
		t.Fatalf("count(*) after crash recovery = %d, %v; want 100", n, err)
	}
}

func TestReplica(t *testing.T) {
	set := needOwnServers(t)
	primary := set.Server(0)
	dsn := set.NewDatabases(t.Context(), t, "replica")[0]
	exec1(t, dsn, "CREATE TABLE t (id int)")

	r, err := primary.StartReplica(t.Context())
	if err != nil {
		t.Fatalf("StartReplica: %v", err)
	}
	defer func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("stop replica: %v", err)
		}
	}()
	if r.Primary() != primary || r.Index() != primary.Index() || r.Port() == primary.Port() {
		t.Fatalf("replica %s: Primary() = %v, Index() = %d, Port() = %d; want %s, %d, not %d",
			r, r.Primary(), r.Index(), r.Port(), primary, primary.Index(), primary.Port())
	}
	if got := set.Replicas(); len(got) == 0 || got[len(got)-1] != r {
		t.Fatalf("Replicas() = %v; want it to end with %s", got, r)
	}
	rdsn := r.DSN(dbName(t, dsn))
	if n, err := count(t.Context(), rdsn, "SELECT pg_is_in_recovery()::int"); err != nil || n != 1 {
		t.Fatalf("pg_is_in_recovery() on replica = %d, %v; want 1", n, err)
	}

	exec1(t, dsn, "INSERT INTO t VALUES (42)")
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := count(t.Context(), rdsn, "SELECT count(*) FROM t WHERE id = 42")
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("row written on %s not seen on %s after 30 s: count = %d, %v", primary, r, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	db := open(t, rdsn)
	if _, err := db.ExecContext(t.Context(), "INSERT INTO t VALUES (1)"); err == nil {
		t.Fatalf("write on the hot standby succeeded; want read-only error")
	}

	// A replica restarts as a standby.
	if err := r.Stop(t.Context()); err != nil {
		t.Fatalf("stop replica: %v", err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("restart replica: %v", err)
	}
	if n, err := count(t.Context(), rdsn, "SELECT count(*) FROM t"); err != nil || n != 1 {
		t.Fatalf("count(*) on restarted replica = %d, %v; want 1", n, err)
	}
}

func TestExternal(t *testing.T) {
	own := Shared()
	t.Setenv(EnvVar, own.Server(0).DSN("")+" , "+own.Server(1).DSN("postgres"))
	set, err := Start(3)
	if err != nil {
		t.Fatalf("Start(3) with %s: %v", EnvVar, err)
	}
	defer set.Close()
	if !set.External() || set.Len() != 3 {
		t.Fatalf("External() = %v, Len() = %d; want true, 3", set.External(), set.Len())
	}
	// Three servers over two: round-robin.
	if set.Server(2).Port() != own.Server(0).Port() || set.Server(1).Port() != own.Server(1).Port() {
		t.Fatalf("ports %d %d %d; want %d %d %d", set.Server(0).Port(), set.Server(1).Port(), set.Server(2).Port(),
			own.Server(0).Port(), own.Server(1).Port(), own.Server(0).Port())
	}
	dsns := set.NewDatabases(t.Context(), t, "ext")
	if dbName(t, dsns[0]) == dbName(t, dsns[2]) {
		t.Fatalf("servers 0 and 2 share the database %s; want separate databases", dbName(t, dsns[0]))
	}
	for _, dsn := range dsns {
		exec1(t, dsn, "CREATE TABLE t (id int)") // would fail if two shared a database
	}
	s := set.Server(0)
	for name, err := range map[string]error{
		"Stop":  s.Stop(t.Context()),
		"Start": s.Start(t.Context()),
		"Kill":  s.Kill(),
	} {
		if !errors.Is(err, ErrExternal) {
			t.Errorf("%s on external server = %v; want ErrExternal", name, err)
		}
	}
	if _, err := s.StartReplica(t.Context()); !errors.Is(err, ErrExternal) {
		t.Errorf("StartReplica on external server = %v; want ErrExternal", err)
	}
	if !s.Running() {
		t.Errorf("Running() on external server = false; want true")
	}
}

func TestParseExternal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", want: 1},
		{in: "postgres://a@h1/x, postgresql://b@h2:6000/y,", want: 2},
		{in: " , ", wantErr: "names no server"},
		{in: "mysql://h/x", wantErr: "entry 1"},
		{in: "postgres://u:secret@h:notaport/x", wantErr: "entry 1"},
		{in: "postgres://h/x,postgres:///nohost", wantErr: "entry 2"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseExternal(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseExternal(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("parseExternal(%q) error %q shows the password", tc.in, err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("parseExternal(%q) = %d URLs, %v; want %d", tc.in, len(got), err, tc.want)
			}
		})
	}
}

func TestExternalDSN(t *testing.T) {
	u, _ := url.Parse("postgres://u:p@db.example:6000/admin?application_name=x")
	s := &Server{name: "pg0", ext: u}
	got, err := url.Parse(s.DSN("shard_1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "/shard_1" || got.Query().Get("sslmode") != "disable" || got.Query().Get("application_name") != "x" || got.Host != "db.example:6000" {
		t.Errorf("DSN(shard_1) = %s; want database shard_1, sslmode=disable, the rest kept", got)
	}
	if a := s.adminDSN(); !strings.Contains(a, "/admin?") {
		t.Errorf("adminDSN() = %s; want the database given in the DSN", a)
	}
}

func TestDatabaseNames(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"orders", "orders_"},
		{"Test/Sub-Case", "test_sub_case_"},
		{"", "db__"},
		{"9lives", "db_9lives_"},
		{strings.Repeat("x", 100), strings.Repeat("x", 10)},
	} {
		names := databaseNames(tc.prefix, 12)
		if len(names) != 12 {
			t.Fatalf("databaseNames(%q, 12) gave %d names", tc.prefix, len(names))
		}
		seen := map[string]bool{}
		for i, n := range names {
			if !strings.HasPrefix(n, tc.want) || !strings.HasSuffix(n, "_"+strconv.Itoa(i)) || len(n) > maxIdent || seen[n] {
				t.Errorf("databaseNames(%q)[%d] = %q; want prefix %q, suffix _%d, at most %d bytes, unique", tc.prefix, i, n, tc.want, i, maxIdent)
			}
			seen[n] = true
		}
	}
}

func TestCreateDatabaseErrors(t *testing.T) {
	s := Shared().Server(0)
	if err := s.CreateDatabase(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("CreateDatabase(\"\") = %v; want an error about the empty name", err)
	}
	if err := s.CreateDatabase(t.Context(), strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "63") {
		t.Errorf("CreateDatabase(64 bytes) = %v; want an error about the 63-byte limit", err)
	}
	name := "dup_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := s.CreateDatabase(t.Context(), name); err != nil {
		t.Fatalf("CreateDatabase(%q): %v", name, err)
	}
	defer func() {
		if err := s.DropDatabase(context.Background(), name); err != nil {
			t.Errorf("DropDatabase(%q): %v", name, err)
		}
	}()
	if err := s.CreateDatabase(t.Context(), name); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("second CreateDatabase(%q) = %v; want an error naming it", name, err)
	}
}

func TestStartOwnSet(t *testing.T) {
	if Shared().External() {
		t.Skipf("servers come from %s; this test starts clusters of its own", EnvVar)
	}
	// A directory left by a crashed run: its owner pid is dead.
	acct, err := currentAccount()
	if err != nil {
		t.Fatal(err)
	}
	stale, err := os.MkdirTemp(tempBase(acct), tempPrefix)
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	set, err := Start(1, WithSetting("work_mem", "7MB"), WithStartTimeout(30*time.Second))
	if err != nil {
		t.Fatalf("Start(1): %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale directory %s still there after Start (stat: %v)", stale, err)
		_ = os.RemoveAll(stale)
	}
	var got string
	db := open(t, set.Server(0).DSN(""))
	if err := db.QueryRowContext(t.Context(), "SHOW work_mem").Scan(&got); err != nil || got != "7MB" {
		t.Errorf("SHOW work_mem = %q, %v; want 7MB from WithSetting", got, err)
	}
	_ = db.Close()
	dir := set.Dir()
	if err := set.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := set.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Close (stat: %v)", dir, err)
	}
	if err := set.Server(0).Start(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v; want ErrClosed", err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(0); err == nil || !strings.Contains(err.Error(), "Start(0)") {
		t.Errorf("Start(0) = %v; want an error naming the count", err)
	}
	if Shared().External() {
		return
	}
	_, err := Start(1, WithBinDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") || !strings.Contains(err.Error(), EnvVar) {
		t.Errorf("Start with an empty bin dir = %v; want an error saying how to install PostgreSQL or set %s", err, EnvVar)
	}
	// A setting PostgreSQL rejects: the error carries the server's log.
	_, err = Start(1, WithSetting("no_such_setting", "1"))
	if err == nil || !strings.Contains(err.Error(), "no_such_setting") {
		t.Errorf("Start with a bad setting = %v; want an error quoting the server log", err)
	}
}
