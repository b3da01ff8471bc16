// Package shardtest starts throwaway PostgreSQL servers for the tests of apps that use
// bunshard (and for bunshard's own), as net/http/httptest starts HTTP servers: every
// integration test then runs against real, separate servers, one per shard, with a fresh
// database on each, and can stop, crash, freeze and restart a shard to test its faults.
//
// # Use from TestMain
//
// A test package starts its servers once, in TestMain, and takes fresh shards per test:
//
//	func TestMain(m *testing.M) {
//		os.Exit(shardtest.Main(m, 4)) // four servers, each on its own port
//	}
//
//	func TestOrders(t *testing.T) {
//		shards := shardtest.Shared().NewShards(t, "orders") // a new database on each server
//		sess, err := session.New(shards.IDBs(), byTenant, chooser.All, byTenant)
//		...
//		if err := shards.Server("shard2").Kill(); err != nil { ... } // a shard crashes
//	}
//
// [Set.NewShards] gives one ready *bun.DB per shard (ids "shard0", "shard1", … or those of
// [WithNames]; more shards than servers share servers round-robin, each shard in a database
// of its own), all on one shared pgdialect instance as bunshard's session requires, over
// Bun's pgdriver or, with [WithPGX], pgx's database/sql driver. The test's cleanup closes
// them and drops the databases. [Set.NewDatabases] gives the DSNs alone.
//
// shardtest does not build a session itself: bunshard's own session tests use this package,
// so it cannot import session. Building one is the line above.
//
// Main prints why and returns exit code 1 when the servers cannot be had: a test never
// skips silently for lack of PostgreSQL, and the message says what to install. Outside
// tests (a demo, a benchmark, a command's tests), call [Start] and [Set.Close] directly, and
// [Server.CreateDatabase] and [Server.DropDatabase] for databases.
//
// # Servers
//
// [Start] runs initdb once into a template (kept while any Set of the process is open) and
// copies it for each server, then runs "postgres -D dir" for each as a child process
// listening on its own free port of 127.0.0.1, with durability off (fsync, synchronous_commit
// and full_page_writes off), trust authentication for local and 127.0.0.1 connections
// including replication, max_prepared_transactions=64 (two-phase commit works),
// wal_level=replica and hot_standby=on (replicas work), superuser postgres and database
// postgres, time zone UTC. Each server logs to shardtest.log in its data directory; a start
// error includes the tail of that log. With synchronous_commit off, [Server.Kill] may lose
// the commits of the last fraction of a second, as a real crash would.
//
// The server binaries are found with "pg_config --bindir", then /usr/lib/postgresql/*/bin
// (highest version first), then PATH. When there are none, the error says what to install:
// on Debian or Ubuntu "apt-get install postgresql" (or a version, postgresql-15), on Fedora
// "dnf install postgresql-server", on macOS "brew install postgresql@15"; or name running
// servers in BUNSHARD_TEST_PG.
//
// Servers never outlive the test binary: on Linux each postmaster gets SIGQUIT when the
// process that started it dies (parent-death signal), and [Start] removes the temporary
// directories (named bunshard-pgtest-*) that earlier crashed runs left behind. One caveat:
// Linux sends that signal when the OS thread that started the server exits, which in Go
// happens only if a goroutine exits while locked with runtime.LockOSThread.
//
// # Faults
//
// [Server.Stop] shuts a server down cleanly, [Server.Kill] crashes it (SIGKILL to every
// process), [Server.Start] brings it back on the same port and data (after crash recovery),
// [Server.Freeze] and [Server.Thaw] make it hang and resume (SIGSTOP, SIGCONT), and
// [Server.StartReplica] starts a streaming hot standby of it.
//
// # Running as root
//
// initdb and postgres refuse to run as root. When the process runs as root, shardtest runs
// them as the OS user postgres (which the Debian package creates) and gives that user the
// temporary directories; Start fails with a message saying so when there is no such user.
//
// # External servers
//
// When the environment variable BUNSHARD_TEST_PG is set, shardtest starts nothing and uses
// the servers it names instead: a comma-separated list of superuser DSNs, one per server,
// such as
//
//	BUNSHARD_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable,postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable
//
// When it lists fewer servers than asked for, they are reused round-robin: two [Server]
// values may then be the same PostgreSQL server, told apart only by the databases that
// [Set.NewDatabases] and [Set.NewShards] create (tests isolate by database anyway). External
// servers cannot be stopped, killed, frozen, restarted or replicated: those methods return
// an error matching [ErrExternal], so a fault test fails or skips by its own choice, saying
// why.
//
// # Concurrency
//
// A [Set], its [Server] values and [Shards] are safe for concurrent use; Start, Stop, Kill,
// Freeze and Thaw on one server are serialised.
package shardtest
