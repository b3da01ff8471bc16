// Package pgtest starts throwaway PostgreSQL clusters for bunshard's tests, demo and
// benchmarks, so that every integration test runs against real, separate servers.
//
// # Use from TestMain
//
// A test package starts its servers once, in TestMain, and takes a fresh database on each of
// them per test:
//
//	func TestMain(m *testing.M) {
//		os.Exit(pgtest.Main(m, 4)) // four clusters, each on its own port
//	}
//
//	func TestOrders(t *testing.T) {
//		dsns := pgtest.Shared().NewDatabases(t.Context(), t, "orders") // one DSN per server
//		...
//	}
//
// Main prints why and returns exit code 1 when the servers cannot be had: a test never
// skips silently for lack of PostgreSQL. Outside tests (the demo, benchmarks), call [Start]
// and [Set.Close] directly, and [Server.CreateDatabase] and [Server.DropDatabase] for
// databases.
//
// # Clusters
//
// [Start] runs initdb once into a template (kept while any Set of the process is open) and
// copies it for each cluster, then runs "postgres -D dir" for each as a child process
// listening on its own free port of 127.0.0.1, with durability off (fsync, synchronous_commit and full_page_writes off), trust
// authentication for local and 127.0.0.1 connections including replication,
// max_prepared_transactions=64, wal_level=replica and hot_standby=on, superuser postgres and
// database postgres, time zone UTC. Each server logs to pgtest.log in its data directory; a
// start error includes the tail of that log. With synchronous_commit off, [Server.Kill] may
// lose the commits of the last fraction of a second, as a real crash would.
//
// The server binaries are found with "pg_config --bindir", then /usr/lib/postgresql/*/bin
// (highest version first), then PATH. On Debian or Ubuntu, "apt-get install postgresql"
// provides them.
//
// Servers never outlive the test binary: on Linux each postmaster gets SIGQUIT when the
// process that started it dies (parent-death signal), and [Start] removes the temporary
// directories (named bunshard-pgtest-*) that earlier crashed runs left behind. One caveat:
// Linux sends that signal when the OS thread that started the server exits, which in Go
// happens only if a goroutine exits while locked with runtime.LockOSThread.
//
// # Running as root
//
// initdb and postgres refuse to run as root. When the process runs as root, pgtest runs them
// as the OS user postgres (which the Debian package creates) and gives that user the
// temporary directories; Start fails with a message saying so when there is no such user.
//
// # External servers
//
// When the environment variable BUNSHARD_TEST_PG is set, pgtest starts nothing and uses the
// servers it names instead: a comma-separated list of superuser DSNs, one per server, such as
//
//	BUNSHARD_TEST_PG=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable,postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable
//
// When it lists fewer servers than asked for, they are reused round-robin: two [Server]
// values may then be the same PostgreSQL server, told apart only by the databases that
// [Set.NewDatabases] creates (tests isolate by database anyway). External servers cannot be
// stopped, killed, restarted or replicated: those methods return an error matching
// [ErrExternal].
//
// # Concurrency
//
// A [Set] and its [Server] values are safe for concurrent use; Start, Stop and Kill on one
// server are serialised.
package pgtest
