package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

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
// synchronous_commit on, so that a killed server keeps what it committed
// and prepared, as a real crash would.
type tpFixture struct {
	set *pgtest.Set
}

func newTPFixture(t *testing.T) *tpFixture {
	t.Helper()
	set, err := pgtest.Start(len(tpShards), pgtest.WithSetting("synchronous_commit", "on"))
	if err != nil {
		t.Fatalf("start servers: %v", err)
	}
	t.Cleanup(func() { set.Close() })
	if set.External() {
		t.Skip("fault injection needs servers the harness started, not " + pgtest.EnvVar)
	}
	return &tpFixture{set: set}
}

// tpCase is one scenario's databases (fresh ones on each server) and
// session.
type tpCase struct {
	t     *testing.T
	set   *pgtest.Set
	dbs   map[session.ShardID]*bun.DB
	admin map[session.ShardID]*bun.DB // a second pool per shard, for checks and kills
	s     *session.Session
}

func (fx *tpFixture) newCase(t *testing.T, hook func(c *tpCase, stage string, id session.ShardID)) *tpCase {
	t.Helper()
	ctx := context.Background()
	dsns := fx.set.NewDatabases(ctx, t, "tp")
	dialect := pgdialect.New()
	c := &tpCase{t: t, set: fx.set, dbs: map[session.ShardID]*bun.DB{}, admin: map[session.ShardID]*bun.DB{}}
	shards := map[session.ShardID]bun.IDB{}
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithDialTimeout(2*time.Second))), dialect)
		t.Cleanup(func() { db.Close() })
		return db
	}
	for i, id := range tpShards {
		db := open(dsns[i])
		weather.Register(db)
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatal(err)
		}
		c.dbs[id], c.admin[id], shards[id] = db, open(dsns[i]), db
	}
	byCity := chooser.NewValueMap("continent", map[string]session.ShardID{"A": "a", "B": "b", "C": "c"})
	opts := []session.Option{}
	if hook != nil {
		opts = append(opts, session.WithTwoPhaseHook(func(stage string, id session.ShardID) { hook(c, stage, id) }))
	}
	s, err := session.New(shards, byCity, chooser.All, byCity, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.s = s
	return c
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
	var left int
	if err := c.admin["a"].NewRaw("SELECT count(*) FROM bunshard_decisions").Scan(context.Background(), &left); err != nil || (want && left != 0) {
		c.t.Errorf("decision records after Recover = %d, %v; want none", left, err)
	}
	return rec
}

// crashed is the panic value of a simulated crash of the committing process.
type crashed struct{}

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

func TestTwoPhaseCommitFaults(t *testing.T) {
	fx := newTPFixture(t)
	ctx := context.Background()
	commitErr := func(t *testing.T, err error) *session.CommitError {
		t.Helper()
		ce, ok := errors.AsType[*session.CommitError](err)
		if !ok {
			t.Fatalf("Commit = %v; want a *CommitError", err)
		}
		return ce
	}

	t.Run("all shards up", func(t *testing.T) {
		c := fx.newCase(t, nil)
		uow := c.unit(session.TwoPhase())
		if err := uow.Commit(ctx); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		rec := c.recoverAndCheck(true)
		if len(rec.Committed)+len(rec.RolledBack)+len(rec.Left) != 0 {
			t.Errorf("Recover after a clean commit did %+v; want nothing", rec)
		}
	})

	t.Run("shard stopped before prepare", func(t *testing.T) {
		c := fx.newCase(t, nil)
		uow := c.unit(session.TwoPhase())
		c.stop("b")
		ce := commitErr(t, uow.Commit(ctx))
		if len(ce.Committed) != 0 || ce.Decision != "" {
			t.Errorf("CommitError = %+v; want nothing committed and no decision", ce)
		}
		c.recoverAndCheck(false)
	})

	t.Run("connection killed before prepare", func(t *testing.T) {
		c := fx.newCase(t, nil)
		uow := c.unit(session.TwoPhase())
		c.kill("c")
		ce := commitErr(t, uow.Commit(ctx))
		if len(ce.Committed) != 0 {
			t.Errorf("CommitError = %+v; want nothing committed", ce)
		}
		c.recoverAndCheck(false)
	})

	t.Run("crash between prepare and decision", func(t *testing.T) {
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" {
				panic(crashed{})
			}
		})
		commitCrashing(t, c.unit(session.TwoPhase()))
		if got := c.prepared(); !slices.Equal(got, []int{1, 1, 1}) {
			t.Fatalf("prepared after the crash = %v; want one per shard", got)
		}
		rec := c.recoverAndCheck(false) // no decision: presumed abort
		if len(rec.RolledBack) != 3 {
			t.Errorf("Recover = %+v; want 3 rolled back", rec)
		}
	})

	t.Run("coordinator stopped between prepare and decision", func(t *testing.T) {
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
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

	t.Run("crash between decision and commit", func(t *testing.T) {
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "decided" {
				panic(crashed{})
			}
		})
		commitCrashing(t, c.unit(session.TwoPhase()))
		if got := c.rows(); !slices.Equal(got, []int{0, 0, 0}) {
			t.Errorf("rows visible before Recover = %v; want none (prepared, not committed)", got)
		}
		rec := c.recoverAndCheck(true)
		if len(rec.Committed) != 3 {
			t.Errorf("Recover = %+v; want 3 committed", rec)
		}
	})

	t.Run("shard stopped between prepare and commit", func(t *testing.T) {
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
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
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
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
		c := fx.newCase(t, func(c *tpCase, stage string, id session.ShardID) {
			if stage == "commit" && id == "c" { // a and b commit meanwhile
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
		c := fx.newCase(t, func(c *tpCase, stage string, id session.ShardID) {
			if stage == "commit" && id == "b" {
				c.kill("b")
			}
		})
		_ = c.unit(session.TwoPhase()).Commit(ctx)
		c.recoverAndCheck(true)
	})

	t.Run("process crash during commit", func(t *testing.T) {
		c := fx.newCase(t, func(c *tpCase, stage string, id session.ShardID) {
			if stage == "decided" { // a commits, then the process dies
				c.commitByHand("a")
				panic(crashed{})
			}
		})
		commitCrashing(t, c.unit(session.TwoPhase()))
		if got := c.rows(); !slices.Equal(got, []int{2, 0, 0}) {
			t.Errorf("rows before Recover = %v; want [2 0 0]", got)
		}
		c.recoverAndCheck(true)
	})

	t.Run("Recover racing a commit decides abort first", func(t *testing.T) {
		var rec session.Recovered
		var rerr error
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" { // another process recovers now
				rec, rerr = c.s.Recover(ctx)
			}
		})
		ce := commitErr(t, c.unit(session.TwoPhase()).Commit(ctx))
		if rerr != nil || len(rec.RolledBack) != 3 {
			t.Fatalf("concurrent Recover = %+v, %v; want 3 rolled back", rec, rerr)
		}
		if !errors.Is(ce, session.ErrAborted) || ce.Decision != "abort" {
			t.Errorf("CommitError = %+v; want ErrAborted with decision abort", ce)
		}
		c.recoverAndCheck(false)
	})

	t.Run("Recover with a minimum age leaves a young commit alone", func(t *testing.T) {
		var rec session.Recovered
		c := fx.newCase(t, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "prepared" {
				rec, _ = c.s.Recover(ctx, session.RecoverMinAge(time.Hour))
			}
		})
		if err := c.unit(session.TwoPhase()).Commit(ctx); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		if len(rec.Left) != 3 || len(rec.RolledBack) != 0 {
			t.Errorf("Recover with a minimum age = %+v; want 3 left alone", rec)
		}
		c.recoverAndCheck(true)
	})

	t.Run("without two-phase a partial commit is possible and reported", func(t *testing.T) {
		c := fx.newCase(t, nil)
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
