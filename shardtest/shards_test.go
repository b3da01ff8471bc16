package shardtest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/identity"
)

// TestNewShards checks that every shard is a working *bun.DB on its own database of the
// server it names, on one dialect, for each driver, and that the databases are gone after
// the test.
func TestNewShards(t *testing.T) {
	set := Shared()
	var dsns []string
	for _, drv := range Drivers {
		t.Run(string(drv), func(t *testing.T) {
			// Five shards on two servers: round-robin, each in its own database.
			ids := []identity.ShardID{"a", "b", "c", "d", "e"}
			sh := set.NewShards(t, "shards_"+string(drv), WithNames(ids...), WithDriver(drv))
			if got := fmt.Sprint(sh.IDs()); got != fmt.Sprint(ids) || sh.Len() != 5 {
				t.Fatalf("IDs() = %v, Len() = %d; want %v, 5", got, sh.Len(), ids)
			}
			if sh.Driver() != drv {
				t.Errorf("Driver() = %q; want %q", sh.Driver(), drv)
			}
			seen := map[string]identity.ShardID{}
			for i, id := range ids {
				db := sh.DB(id)
				if db.Dialect() != sh.Dialect() {
					t.Errorf("shard %s: its dialect is not Dialect(): session.New would refuse the shards", id)
				}
				if got, want := sh.Server(id), set.Server(i%set.Len()); got != want {
					t.Errorf("Server(%s) = %s; want %s (round-robin)", id, got, want)
				}
				var name string
				var port int
				if err := db.NewRaw("SELECT current_database(), inet_server_port()").Scan(t.Context(), &name, &port); err != nil {
					t.Fatalf("shard %s: %v", id, err)
				}
				if port != sh.Server(id).Port() {
					t.Errorf("shard %s answers on port %d; want its server's %d", id, port, sh.Server(id).Port())
				}
				if other, dup := seen[name]; dup {
					t.Errorf("shards %s and %s share database %s", other, id, name)
				}
				seen[name] = id
				if !strings.HasPrefix(name, "shards_"+string(drv)+"_") || !strings.HasSuffix(sh.DSN(id), "/"+name+"?sslmode=disable") {
					t.Errorf("shard %s: database %q, DSN %s; want a database named after the prefix, in the DSN", id, name, sh.DSN(id))
				}
				dsns = append(dsns, sh.DSN(id))
			}
			if len(sh.DBs()) != 5 || len(sh.IDBs()) != 5 {
				t.Errorf("DBs() has %d, IDBs() %d shards; want 5", len(sh.DBs()), len(sh.IDBs()))
			}
		})
	}
	// The subtests' cleanups have run: their databases are dropped.
	for _, dsn := range dsns {
		name := dbName(t, dsn)
		n, err := count(t.Context(), set.Server(0).DSN(""), "SELECT count(*) FROM pg_database WHERE datname = '"+name+"'")
		if err != nil {
			t.Fatal(err)
		}
		if set.Len() == 2 && !set.External() && n != 0 {
			t.Errorf("database %s still exists after its test", name)
		}
	}
	if len(dsns) != 10 {
		t.Fatalf("checked %d shards; want 10", len(dsns))
	}
}

// TestNewShardsDefaults checks the default: one shard per server, named shard0, shard1, ….
func TestNewShardsDefaults(t *testing.T) {
	set := Shared()
	sh := set.NewShards(t, "defaults")
	if got := fmt.Sprint(sh.IDs()); got != "[shard0 shard1]" {
		t.Fatalf("IDs() = %s; want [shard0 shard1]", got)
	}
	if sh.Driver() != PGDriver {
		t.Errorf("Driver() = %q; want pgdriver", sh.Driver())
	}
	for _, id := range sh.IDs() {
		if err := sh.DB(id).PingContext(t.Context()); err != nil {
			t.Errorf("shard %s: %v", id, err)
		}
	}
}

// fatalTB records the message of Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalOf runs fn with a fatalTB in a goroutine of its own and returns what it failed with.
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

// TestNewShardsBadOptions checks that bad options fail the test, naming the fault.
func TestNewShardsBadOptions(t *testing.T) {
	set := Shared()
	for _, tc := range []struct {
		name string
		opts []ShardOption
		want string
	}{
		{"no names", []ShardOption{WithNames()}, "names no shard"},
		{"empty name", []ShardOption{WithNames("a", "")}, "non-empty and distinct"},
		{"repeated name", []ShardOption{WithNames("a", "a")}, "non-empty and distinct"},
		{"unknown driver", []ShardOption{WithDriver("mysql")}, `unknown driver "mysql"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := fatalOf(t, func(tb testing.TB) { set.NewShards(tb, "bad", tc.opts...) })
			if !strings.Contains(msg, tc.want) {
				t.Errorf("NewShards with %s failed with %q; want it to say %q", tc.name, msg, tc.want)
			}
		})
	}
	if _, err := OpenDB("mysql", "postgres://x"); err == nil || !strings.Contains(err.Error(), "mysql") {
		t.Errorf("OpenDB(mysql) = %v; want an error naming the driver", err)
	}
}

// TestShardsKill checks that a shard's server, killed, fails the shard's statements and
// comes back with Start, with what the shard committed before the crash.
func TestShardsKill(t *testing.T) {
	needOwnServers(t)
	set := Shared()
	sh := set.NewShards(t, "kill")
	srv := sh.Server("shard1")
	ctx := t.Context()
	if _, err := sh.DB("shard1").ExecContext(ctx, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := sh.DB("shard1").PingContext(ctx); err == nil {
		t.Errorf("Ping of a killed shard = nil; want an error")
	}
	if err := sh.DB("shard0").PingContext(ctx); err != nil {
		t.Errorf("Ping of the other shard = %v; want nil", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var id int
	if err := sh.DB("shard1").NewRaw("SELECT id FROM kept").Scan(ctx, &id); err != nil || id != 7 {
		t.Errorf("the row committed before Kill, after restart = %d, %v; want 7 (NewShards commits with synchronous_commit on)", id, err)
	}
}
