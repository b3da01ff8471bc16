package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// The three shards of the two-phase tests, one per private server; "a" is
// the coordinator (first in shard order).
var tpShards = []session.ShardID{"a", "b", "c"}

// tpFixture is three private servers (they are stopped and killed) with
// synchronous_commit on, unless the test asks otherwise, so that a killed
// server keeps what it committed and prepared, as a real crash would.
type tpFixture struct {
	set *pgtest.Set
	// untimed opens the sessions' pools with no driver read or write
	// timeout (pgdriver's default is 10 s), so that only the caller's
	// context can end a statement on a frozen server.
	untimed bool
}

func newTPFixture(t *testing.T, opts ...pgtest.Option) *tpFixture {
	t.Helper()
	opts = append([]pgtest.Option{pgtest.WithSetting("synchronous_commit", "on")}, opts...)
	set, err := pgtest.Start(len(tpShards), opts...)
	if err != nil {
		t.Fatalf("start servers: %v", err)
	}
	t.Cleanup(func() { set.Close() })
	if set.External() {
		t.Skip("fault injection needs servers the harness started, not " + pgtest.EnvVar)
	}
	return &tpFixture{set: set}
}

// drivers are the database/sql drivers a shard's *bun.DB may run on; the
// two-phase, Recover and replica fault tests run on each.
var drivers = []string{"pgdriver", "pgx"}

// tpDialect is the one dialect of every two-phase test's shards.
var tpDialect = pgdialect.New()

// openDriver opens dsn with the named driver, failing fast on a dead server.
func openDriver(t *testing.T, driver, dsn string) *bun.DB {
	return openDriverDialect(t, driver, dsn, tpDialect)
}

// openDriverDialect is openDriver with a dialect of the caller's.
func openDriverDialect(t *testing.T, driver, dsn string, dialect *pgdialect.Dialect) *bun.DB {
	t.Helper()
	var sqldb *sql.DB
	switch driver {
	case "pgdriver":
		sqldb = sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithDialTimeout(2*time.Second)))
	case "pgx":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("parse %s for pgx: %v", dsn, err)
		}
		cfg.ConnectTimeout = 2 * time.Second
		sqldb = stdlib.OpenDB(*cfg)
	default:
		t.Fatalf("unknown driver %q", driver)
	}
	db := bun.NewDB(sqldb, dialect)
	t.Cleanup(func() { db.Close() })
	return db
}

// tpCase is one scenario's databases (fresh ones on each server) and
// session.
type tpCase struct {
	t      *testing.T
	set    *pgtest.Set
	driver string
	dbs    map[session.ShardID]*bun.DB
	admin  map[session.ShardID]*bun.DB // a second pool per shard, for checks and kills
	counts map[session.ShardID]*counter
	logAt  map[session.ShardID]int64 // each server's log size when the case began
	s      *session.Session
}

func (fx *tpFixture) newCase(t *testing.T, driver string, hook func(c *tpCase, stage string, id session.ShardID)) *tpCase {
	t.Helper()
	ctx := context.Background()
	dsns := fx.set.NewDatabases(ctx, t, "tp")
	c := &tpCase{t: t, set: fx.set, driver: driver, dbs: map[session.ShardID]*bun.DB{}, admin: map[session.ShardID]*bun.DB{},
		counts: map[session.ShardID]*counter{}, logAt: map[session.ShardID]int64{}}
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range tpShards {
		c.counts[id] = &counter{}
		var db *bun.DB
		if fx.untimed && driver == "pgdriver" {
			sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]), pgdriver.WithDialTimeout(2*time.Second),
				pgdriver.WithReadTimeout(0), pgdriver.WithWriteTimeout(0)))
			db = bun.NewDB(sqldb, tpDialect)
			t.Cleanup(func() { db.Close() })
		} else {
			db = openDriver(t, driver, dsns[i]) // pgx has no read timeout
		}
		db = db.WithQueryHook(c.counts[id])
		weather.Register(db)
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatal(err)
		}
		c.dbs[id], c.admin[id], shards[id] = db, openDriver(t, driver, dsns[i]), db
		if st, err := os.Stat(c.server(id).LogPath()); err == nil {
			c.logAt[id] = st.Size()
		}
	}
	opts := []session.Option{}
	if hook != nil {
		opts = append(opts, session.WithTwoPhaseHook(func(stage string, id session.ShardID) { hook(c, stage, id) }))
	}
	c.s = c.session(tpShards, opts...)
	return c
}

// session makes a session over some of the case's shards ("a" must be one:
// it is the coordinator).
func (c *tpCase) session(ids []session.ShardID, opts ...session.Option) *session.Session {
	c.t.Helper()
	shards := map[session.ShardID]bun.IDB{}
	for _, id := range ids {
		shards[id] = c.dbs[id]
	}
	byCity := chooser.NewValueMap("continent", map[string]session.ShardID{"A": "a", "B": "b", "C": "c"})
	opts = append([]session.Option{session.WithShardOrder(ids...), session.WithCoordinator("a")}, opts...)
	s, err := session.New(shards, byCity, chooser.All, byCity, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// serverLog returns what shard id's server logged since the case began.
func (c *tpCase) serverLog(id session.ShardID) string {
	c.t.Helper()
	b, err := os.ReadFile(c.server(id).LogPath())
	if err != nil {
		c.t.Fatalf("read the log of %s: %v", id, err)
	}
	return string(b[min(int(c.logAt[id]), len(b)):])
}

// decisionRecords counts the rows of the coordinator's decision table.
func (c *tpCase) decisionRecords() int {
	c.t.Helper()
	var n int
	if err := c.admin["a"].NewRaw("SELECT count(*) FROM bunshard_decisions").Scan(context.Background(), &n); err != nil {
		c.t.Fatalf("count decision records: %v", err)
	}
	return n
}

// killAll terminates every connection of the session's pools, as the death
// of the committing process would (its transactions end with it).
func (c *tpCase) killAll() {
	c.t.Helper()
	for _, id := range tpShards {
		c.kill(id)
	}
}

// server returns the server of shard id.
func (c *tpCase) server(id session.ShardID) *pgtest.Server {
	return c.set.Server(slices.Index(tpShards, id))
}

// unit begins a unit that writes two locations on every shard and flushes
// them, so that each shard has an open transaction holding writes.
func (c *tpCase) unit(opts ...session.UnitOption) *session.UnitOfWork {
	c.t.Helper()
	uow := c.s.Begin(opts...)
	for i, cont := range []string{"A", "B", "C", "A", "B", "C"} {
		if err := uow.Add(&weather.Location{ID: int64(i + 1), Continent: cont, City: fmt.Sprint("city ", i+1)}); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := uow.Flush(context.Background()); err != nil {
		c.t.Fatalf("Flush = %v", err)
	}
	return uow
}

// rows returns how many of the unit's rows each shard holds.
func (c *tpCase) rows() []int {
	c.t.Helper()
	out := make([]int, len(tpShards))
	for i, id := range tpShards {
		n, err := c.admin[id].NewSelect().Table("weather_locations").Count(context.Background())
		if err != nil {
			c.t.Fatalf("count rows on %s: %v", id, err)
		}
		out[i] = int(n)
	}
	return out
}

// prepared returns how many prepared transactions each shard's database
// holds.
func (c *tpCase) prepared() []int {
	c.t.Helper()
	out := make([]int, len(tpShards))
	for i, id := range tpShards {
		err := c.admin[id].NewRaw("SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()").Scan(context.Background(), &out[i])
		if err != nil {
			c.t.Fatalf("count prepared on %s: %v", id, err)
		}
	}
	return out
}

// waitUp waits until every shard answers through both pools (their old
// connections died with a stopped server).
func (c *tpCase) waitUp() {
	c.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range tpShards {
		for _, db := range []*bun.DB{c.dbs[id], c.admin[id]} {
			for db.PingContext(ctx) != nil {
				if time.Now().After(deadline) {
					c.t.Fatalf("shard %s does not answer", id)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// kill terminates the other connections to shard id's database, as an
// operator's pg_terminate_backend or a network cut would. (It may run in a
// hook's goroutine, so it reports with Errorf.)
func (c *tpCase) kill(id session.ShardID) {
	c.t.Helper()
	_, err := c.admin[id].ExecContext(context.Background(),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		c.t.Errorf("terminate backends on %s: %v", id, err)
	}
}

// commitByHand commits shard id's prepared transaction behind the unit's
// back, as a Commit that crashed after committing it would have.
func (c *tpCase) commitByHand(id session.ShardID) {
	c.t.Helper()
	ctx := context.Background()
	var gid string
	if err := c.admin[id].NewRaw("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()").Scan(ctx, &gid); err != nil {
		c.t.Fatalf("find the prepared transaction on %s: %v", id, err)
	}
	if _, err := c.admin[id].ExecContext(ctx, "COMMIT PREPARED ?", gid); err != nil {
		c.t.Fatalf("commit %s on %s: %v", gid, id, err)
	}
}

func (c *tpCase) stop(id session.ShardID) {
	c.t.Helper()
	if err := c.server(id).Stop(context.Background()); err != nil {
		c.t.Fatalf("stop %s: %v", id, err)
	}
}

func (c *tpCase) crash(id session.ShardID) {
	c.t.Helper()
	if err := c.server(id).Kill(); err != nil {
		c.t.Errorf("kill %s: %v", id, err)
	}
}

func (c *tpCase) start(id session.ShardID) {
	c.t.Helper()
	if !c.server(id).Running() {
		if err := c.server(id).Start(context.Background()); err != nil {
			c.t.Fatalf("start %s: %v", id, err)
		}
	}
}

// recoverAndCheck restarts every server, runs Recover, and checks that
// every shard holds all of the unit's writes (want true) or none, and that
// no prepared transaction is left.
func (c *tpCase) recoverAndCheck(want bool) session.Recovered {
	c.t.Helper()
	for _, id := range tpShards {
		c.start(id)
	}
	c.waitUp()
	rec, err := c.s.Recover(context.Background())
	if err != nil {
		c.t.Fatalf("Recover = %v", err)
	}
	wantRows := []int{0, 0, 0}
	if want {
		wantRows = []int{2, 2, 2}
	}
	if got := c.rows(); !slices.Equal(got, wantRows) {
		c.t.Errorf("rows per shard after Recover = %v; want %v (recovered %+v)", got, wantRows, rec)
	}
	if got := c.prepared(); !slices.Equal(got, []int{0, 0, 0}) {
		c.t.Errorf("prepared transactions after Recover = %v; want none", got)
	}
	if n := c.decisionRecords(); n != 0 {
		c.t.Errorf("decision records after Recover = %d; want none", n)
	}
	return rec
}

// crashed is the panic value of a simulated crash of the committing process.
type crashed struct{}

// crashAt is a commit hook that makes the process "die" (panic with
// crashed{}) when Commit reaches stage, on whichever shard.
func crashAt(stage string) func(c *tpCase, stage string, id session.ShardID) {
	return func(_ *tpCase, at string, _ session.ShardID) {
		if at == stage {
			panic(crashed{})
		}
	}
}

// commitCrashing runs Commit, which the hook makes panic with crashed{}, as
// if the process died there: nothing after that point runs.
func commitCrashing(t *testing.T, uow *session.UnitOfWork) {
	t.Helper()
	defer func() {
		if r := recover(); r != (crashed{}) {
			t.Fatalf("Commit did not crash where the hook said; recovered %v", r)
		}
	}()
	err := uow.Commit(context.Background())
	t.Fatalf("Commit returned %v; want a simulated crash", err)
}

func commitErr(t *testing.T, err error) *session.CommitError {
	t.Helper()
	ce, ok := errors.AsType[*session.CommitError](err)
	if !ok {
		t.Fatalf("Commit = %v; want a *CommitError", err)
	}
	return ce
}

// waitForLock waits until a statement on shard id's database waits for a
// lock (a Recover waiting for a Commit's decision).
func (c *tpCase) waitForLock(id session.ShardID) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := c.admin[id].NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "+
			"AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO bunshard_decisions%'").Scan(context.Background(), &n)
		if err != nil {
			c.t.Errorf("look for lock waits on %s: %v", id, err)
			return
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Errorf("no statement waits for a lock on %s after 10 s", id)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTwoPhaseCommitFaults(t *testing.T) {
	fx := newTPFixture(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) { testTwoPhaseCommitFaults(t, fx, driver) })
	}
}

func testTwoPhaseCommitFaults(t *testing.T, fx *tpFixture, driver string) {
	ctx := context.Background()

	t.Run("all shards up", func(t *testing.T) {
		c := fx.newCase(t, driver, nil)
		if _, err := c.s.Recover(ctx); err != nil { // creates the decision table
			t.Fatal(err)
		}
		uow := c.unit(session.TwoPhase())
		for _, id := range tpShards {
			c.counts[id].reset()
		}
		if err := uow.Commit(ctx); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		// The coordinator commits in one phase, holding the decision; the
		// others prepare and commit the prepared transaction, and nothing
		// follows a PREPARE TRANSACTION on its connection.
		want := map[session.ShardID][]string{
			"a": {"SELECT set_config", "COMMIT", "DELETE FROM bunshard_decisions"},
			"b": {"PREPARE TRANSACTION", "COMMIT PREPARED"},
			"c": {"PREPARE TRANSACTION", "COMMIT PREPARED"},
		}
		for _, id := range tpShards {
			got := c.counts[id].statements()
			if len(got) != len(want[id]) {
				t.Errorf("Commit ran %d statements on %s: %q; want %q", len(got), id, got, want[id])
				continue
			}
			for i, q := range got {
				if !strings.HasPrefix(q, want[id][i]) || (want[id][i] == "COMMIT" && q != "COMMIT") {
					t.Errorf("statement %d of Commit on %s = %q; want %s...", i, id, q, want[id][i])
				}
			}
		}
		rec := c.recoverAndCheck(true)
		if len(rec.Committed)+len(rec.RolledBack)+len(rec.Left) != 0 {
			t.Errorf("Recover after a clean commit did %+v; want nothing", rec)
		}
		for _, id := range tpShards {
			if l := c.serverLog(id); strings.Contains(l, "no transaction in progress") {
				t.Errorf("the server of %s warned of a stray statement:\n%s", id, l)
			}
		}
	})

	t.Run("shard stopped before prepare", func(t *testing.T) {
		c := fx.newCase(t, driver, nil)
		uow := c.unit(session.TwoPhase())
		c.stop("b")
		ce := commitErr(t, uow.Commit(ctx))
		if len(ce.Committed) != 0 || ce.Decision != "" {
			t.Errorf("CommitError = %+v; want nothing committed and no decision", ce)
		}
		c.recoverAndCheck(false)
	})

	t.Run("connection killed before prepare", func(t *testing.T) {
		c := fx.newCase(t, driver, nil)
		uow := c.unit(session.TwoPhase())
		c.kill("c")
		ce := commitErr(t, uow.Commit(ctx))
		if len(ce.Committed) != 0 {
			t.Errorf("CommitError = %+v; want nothing committed", ce)
		}
		c.recoverAndCheck(false)
	})

	t.Run("crash between prepare and decision", func(t *testing.T) {
		c := fx.newCase(t, driver, crashAt("prepared"))
		commitCrashing(t, c.unit(session.TwoPhase()))
		c.killAll() // the process is dead: so are its connections, and the coordinator's open transaction
		if got := c.prepared(); !slices.Equal(got, []int{0, 1, 1}) {
			t.Fatalf("prepared after the crash = %v; want one on each shard but the coordinator", got)
		}
		rec := c.recoverAndCheck(false) // no decision: presumed abort
		if len(rec.RolledBack) != 2 {
			t.Errorf("Recover = %+v; want 2 rolled back", rec)
		}
	})

	t.Run("coordinator stopped between prepare and decision", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" {
				c.stop("a")
			}
		})
		ce := commitErr(t, c.unit(session.TwoPhase()).Commit(ctx))
		if !errors.Is(ce, session.ErrInDoubt) || len(ce.Pending) != 3 {
			t.Errorf("CommitError = %+v; want ErrInDoubt with 3 pending shards", ce)
		}
		c.recoverAndCheck(false)
	})

	t.Run("connection to the coordinator killed before the decision", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" {
				c.kill("a")
			}
		})
		// Commit cannot know from the broken COMMIT whether it happened:
		// it probes, finds no decision, and rolls every shard back.
		ce := commitErr(t, c.unit(session.TwoPhase()).Commit(ctx))
		if !errors.Is(ce, session.ErrAborted) || ce.Decision != "abort" || len(ce.Pending) != 0 {
			t.Errorf("CommitError = %+v; want ErrAborted, decision abort, nothing pending", ce)
		}
		if got := c.prepared(); !slices.Equal(got, []int{0, 0, 0}) {
			t.Errorf("prepared after Commit = %v; want none", got)
		}
		c.recoverAndCheck(false)
	})

	t.Run("crash between decision and commit", func(t *testing.T) {
		c := fx.newCase(t, driver, crashAt("decided"))
		commitCrashing(t, c.unit(session.TwoPhase()))
		if got := c.rows(); !slices.Equal(got, []int{2, 0, 0}) {
			t.Errorf("rows visible before Recover = %v; want the coordinator's (it committed with the decision)", got)
		}
		rec := c.recoverAndCheck(true)
		if len(rec.Committed) != 2 {
			t.Errorf("Recover = %+v; want 2 committed", rec)
		}
	})

	t.Run("shard stopped between prepare and commit", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "decided" {
				c.stop("b")
			}
		})
		ce := commitErr(t, c.unit(session.TwoPhase()).Commit(ctx))
		if ce.Decision != "commit" || !slices.Equal(ce.Pending, []session.ShardID{"b"}) || !slices.Equal(ce.Committed, []session.ShardID{"a", "c"}) {
			t.Errorf("CommitError = %+v; want decision commit, a and c committed, b pending", ce)
		}
		c.recoverAndCheck(true)
	})

	t.Run("connection killed between prepare and commit", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "decided" {
				c.kill("b")
				c.kill("c")
			}
		})
		// The pools' connections are dead; database/sql may retry on a new
		// one. Either way the decision holds.
		_ = c.unit(session.TwoPhase()).Commit(ctx)
		c.recoverAndCheck(true)
	})

	t.Run("shard crashed during commit", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, id session.ShardID) {
			if stage == "commit" && id == "c" { // b commits meanwhile
				c.crash("c")
			}
		})
		ce := commitErr(t, c.unit(session.TwoPhase()).Commit(ctx))
		if !slices.Equal(ce.Pending, []session.ShardID{"c"}) || !slices.Equal(ce.Committed, []session.ShardID{"a", "b"}) {
			t.Errorf("CommitError = %+v; want a and b committed, c pending", ce)
		}
		c.recoverAndCheck(true)
	})

	t.Run("connection killed during commit", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, id session.ShardID) {
			if stage == "commit" && id == "b" {
				c.kill("b")
			}
		})
		_ = c.unit(session.TwoPhase()).Commit(ctx)
		c.recoverAndCheck(true)
	})

	t.Run("process crash during commit", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, id session.ShardID) {
			if stage == "decided" { // b commits, then the process dies
				c.commitByHand("b")
				panic(crashed{})
			}
		})
		commitCrashing(t, c.unit(session.TwoPhase()))
		if got := c.rows(); !slices.Equal(got, []int{2, 2, 0}) {
			t.Errorf("rows before Recover = %v; want [2 2 0]", got)
		}
		c.recoverAndCheck(true)
	})

	t.Run("Recover during a commit waits for its decision", func(t *testing.T) {
		var rec session.Recovered
		var rerr error
		var wg sync.WaitGroup
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" { // another process recovers now
				wg.Go(func() { rec, rerr = c.session(tpShards).Recover(ctx) })
				c.waitForLock("a")
			}
		})
		if err := c.unit(session.TwoPhase()).Commit(ctx); err != nil {
			t.Errorf("Commit = %v; want it to commit, Recover waiting for its decision", err)
		}
		wg.Wait()
		if rerr != nil || len(rec.RolledBack) != 0 || len(rec.Left) != 0 || len(rec.Committed) > 2 {
			t.Errorf("concurrent Recover = %+v, %v; want at most the 2 prepared transactions committed, nothing else", rec, rerr)
		}
		c.recoverAndCheck(true)
	})

	t.Run("Recover with a minimum age leaves a young commit alone", func(t *testing.T) {
		var rec session.Recovered
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" {
				rec, _ = c.s.Recover(ctx, session.RecoverMinAge(time.Hour))
			}
		})
		if err := c.unit(session.TwoPhase()).Commit(ctx); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		if len(rec.Left) != 2 || len(rec.RolledBack) != 0 {
			t.Errorf("Recover with a minimum age = %+v; want 2 left alone", rec)
		}
		c.recoverAndCheck(true)
	})

	t.Run("Recover from a session lacking a shard keeps the record for it", func(t *testing.T) {
		c := fx.newCase(t, driver, crashAt("decided"))
		commitCrashing(t, c.unit(session.TwoPhase()))
		part, err := c.session([]session.ShardID{"a", "b"}).Recover(ctx)
		if err != nil || len(part.Committed) != 1 || !strings.HasSuffix(part.Committed[0], "_b") {
			t.Errorf("Recover on shards a and b = %+v, %v; want b's transaction committed", part, err)
		}
		if n := c.decisionRecords(); n != 1 {
			t.Errorf("decision records after Recover on a and b = %d; want 1, kept for shard c", n)
		}
		if got := c.prepared(); !slices.Equal(got, []int{0, 0, 1}) {
			t.Errorf("prepared after Recover on a and b = %v; want c's left", got)
		}
		rec := c.recoverAndCheck(true)
		if len(rec.Committed) != 1 || !strings.HasSuffix(rec.Committed[0], "_c") {
			t.Errorf("Recover on every shard = %+v; want c's transaction committed", rec)
		}
	})

	t.Run("Recover on another coordinator leaves the transactions alone", func(t *testing.T) {
		c := fx.newCase(t, driver, crashAt("decided"))
		commitCrashing(t, c.unit(session.TwoPhase()))
		other, err := c.session(tpShards, session.WithCoordinator("b")).Recover(ctx)
		if err != nil || len(other.Left) != 2 || len(other.Committed)+len(other.RolledBack) != 0 {
			t.Errorf("Recover with coordinator b = %+v, %v; want both prepared transactions left alone", other, err)
		}
		c.recoverAndCheck(true)
	})

	t.Run("coordinator not written: a transaction of its own holds the decision", func(t *testing.T) {
		c := fx.newCase(t, driver, crashAt("decided"))
		uow := c.s.Begin(session.TwoPhase())
		for i, cont := range []string{"B", "C"} {
			if err := uow.Add(&weather.Location{ID: int64(i + 1), Continent: cont, City: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		commitCrashing(t, uow)
		if got := c.prepared(); !slices.Equal(got, []int{0, 1, 1}) {
			t.Errorf("prepared after the crash = %v; want b's and c's", got)
		}
		rec, err := c.s.Recover(ctx)
		if err != nil || len(rec.Committed) != 2 {
			t.Errorf("Recover = %+v, %v; want 2 committed", rec, err)
		}
		if got, n := c.rows(), c.decisionRecords(); !slices.Equal(got, []int{0, 1, 1}) || n != 0 {
			t.Errorf("rows after Recover = %v, %d decision records; want [0 1 1] and none", got, n)
		}
	})

	t.Run("a two-phase unit's held transactions", func(t *testing.T) {
		c := fx.newCase(t, driver, nil)
		uow := c.s.Begin(session.TwoPhase(), session.TxOptions(&sql.TxOptions{Isolation: sql.LevelSerializable}))
		defer uow.Rollback(ctx)
		db, err := uow.DB(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		var iso string
		if err := db.NewRaw("SHOW transaction_isolation").Scan(ctx, &iso); err != nil || iso != "serializable" {
			t.Errorf("isolation of the unit's transaction = %q, %v; want serializable, as TxOptions said", iso, err)
		}
		err = db.RunInTx(ctx, nil, func(context.Context, bun.Tx) error { return nil })
		if !errors.Is(err, session.ErrUnsupported) {
			t.Errorf("RunInTx on a two-phase unit's transaction = %v; want ErrUnsupported", err)
		}
		if _, err := db.BeginTx(ctx, nil); !errors.Is(err, session.ErrUnsupported) {
			t.Errorf("BeginTx on a two-phase unit's transaction = %v; want ErrUnsupported", err)
		}
		bad := c.s.Begin(session.TwoPhase(), session.TxOptions(&sql.TxOptions{Isolation: sql.LevelSnapshot}))
		if _, err := bad.DB(ctx, "b"); !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("DB of a two-phase unit with isolation Snapshot = %v; want ErrInvalidArgument", err)
		}
		_ = bad.Rollback(ctx)
	})

	t.Run("without two-phase a partial commit is possible and reported", func(t *testing.T) {
		c := fx.newCase(t, driver, nil)
		uow := c.unit()
		c.stop("c")
		ce := commitErr(t, uow.Commit(ctx))
		if !slices.Equal(ce.Committed, []session.ShardID{"a", "b"}) || !slices.Equal(ce.Failed, []session.ShardID{"c"}) {
			t.Errorf("CommitError = %+v; want a and b committed, c failed", ce)
		}
		wantIn(t, ce, "partial commit", "[a b]", "[c]")
		c.start("c")
		c.waitUp()
		if got := c.rows(); !slices.Equal(got, []int{2, 2, 0}) {
			t.Errorf("rows per shard = %v; want [2 2 0]: the partial commit the error reported", got)
		}
	})
}

// TestTwoPhaseDecisionDurable kills the coordinator's server right after
// the decision, on servers running with synchronous_commit off: the
// decision must survive, so that Recover commits every shard.
func TestTwoPhaseDecisionDurable(t *testing.T) {
	fx := newTPFixture(t, pgtest.WithSetting("synchronous_commit", "off"))
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			for run := range 2 {
				c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
					if stage == "decided" {
						c.crash("a")
					}
				})
				if _, err := c.s.Recover(context.Background()); err != nil { // creates the decision table
					t.Fatal(err)
				}
				_ = c.unit(session.TwoPhase()).Commit(context.Background())
				c.t.Logf("run %d", run)
				c.recoverAndCheck(true)
			}
		})
	}
}

// TestRecoverRacingCommit runs two-phase commits from several goroutines
// while others run Recover over and over, then checks every unit is all or
// none, that each Recover's report matches the data, and that no prepared
// transaction or decision record is left.
func TestRecoverRacingCommit(t *testing.T) {
	fx := newTPFixture(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) { testRecoverRacingCommit(t, fx, driver) })
	}
}

func testRecoverRacingCommit(t *testing.T, fx *tpFixture, driver string) {
	ctx := context.Background()
	c := fx.newCase(t, driver, nil)
	const committers, recoverers = 3, 2
	type unitResult struct {
		txid string
		err  error
	}
	var next atomic.Int64
	results := map[int64]unitResult{} // by the unit's first location id
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range committers {
		var txid string
		s := c.session(tpShards, session.WithTwoPhaseHook(func(stage string, id session.ShardID) {
			if stage == "txid" {
				txid = string(id)
			}
		}))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				first := next.Add(3) - 2
				txid = ""
				uow := s.Begin(session.TwoPhase())
				for i, cont := range []string{"A", "B", "C"} {
					if err := uow.Add(&weather.Location{ID: first + int64(i), Continent: cont, City: "race"}); err != nil {
						t.Error(err)
						return
					}
				}
				err := uow.Commit(ctx)
				mu.Lock()
				results[first] = unitResult{txid, err}
				mu.Unlock()
			}
		})
	}
	var reports []session.Recovered
	for range recoverers {
		s := c.session(tpShards)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec, err := s.Recover(ctx)
				if err != nil {
					t.Errorf("Recover = %v", err)
				}
				mu.Lock()
				reports = append(reports, rec)
				mu.Unlock()
			}
		})
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if _, err := c.s.Recover(ctx); err != nil {
		t.Fatalf("final Recover = %v", err)
	}

	// Which units are on which shard.
	present := map[int64][3]bool{}
	for i, id := range tpShards {
		var ids []int64
		if err := c.admin[id].NewSelect().Table("weather_locations").Column("id").Scan(ctx, &ids); err != nil {
			t.Fatal(err)
		}
		for _, lid := range ids {
			first := lid - int64(i)
			p := present[first]
			p[i] = true
			present[first] = p
		}
	}
	byTxID := map[string]int64{}
	var committed, aborted int
	for first, r := range results {
		byTxID[r.txid] = first
		p := present[first]
		all, none := p == [3]bool{true, true, true}, p == [3]bool{}
		switch {
		case !all && !none:
			t.Errorf("unit %d (txid %s) is on shards %v only: split", first, r.txid, p)
		case r.err == nil && !all:
			t.Errorf("unit %d: Commit = nil, but its rows are on %v", first, p)
		case errors.Is(r.err, session.ErrAborted) && !none:
			t.Errorf("unit %d: Commit = %v, but its rows are on %v", first, r.err, p)
		}
		if all {
			committed++
		} else {
			aborted++
		}
	}
	var claims int
	for _, rec := range reports {
		check := func(gids []string, wantAll bool, what string) {
			for _, g := range gids {
				claims++
				txid := strings.Split(g, "_")[1]
				first, ok := byTxID[txid]
				if !ok {
					t.Errorf("Recover reported %s %s, a transaction no Commit made", what, g)
					continue
				}
				if p := present[first]; (p == [3]bool{true, true, true}) != wantAll {
					t.Errorf("Recover reported %s %s, but unit %d is on shards %v", what, g, first, p)
				}
			}
		}
		check(rec.Committed, true, "committed")
		check(rec.RolledBack, false, "rolled back")
	}
	t.Logf("%d units committed, %d not; %d Recovers resolved %d transactions", committed, aborted, len(reports), claims)
	if committed == 0 {
		t.Error("no unit committed: the race tested nothing")
	}
	if got := c.prepared(); !slices.Equal(got, []int{0, 0, 0}) {
		t.Errorf("prepared transactions after the race = %v; want none", got)
	}
	if n := c.decisionRecords(); n != 0 {
		t.Errorf("decision records after the race = %d; want none", n)
	}
}
