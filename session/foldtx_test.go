package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// countPrefix counts, per server, the statements since reset that start
// with prefix.
func (e *foldEnv) countPrefix(prefix string) []int {
	out := make([]int, len(e.servers))
	for i, c := range e.servers {
		for _, s := range c.statements() {
			if strings.HasPrefix(s, prefix) {
				out[i]++
			}
		}
	}
	return out
}

// foldUnitWrites adds one new item per logical shard (ids from base) to a
// unit of s, updates one stored item per shard, and commits it.
func foldUnitWrites(t *testing.T, s *session.Session, base int64, opts ...session.UnitOption) error {
	t.Helper()
	ctx := context.Background()
	uow := s.Begin(opts...)
	defer uow.Rollback(ctx)
	for i := range foldShards {
		name := fmt.Sprint("new ", base+int64(i))
		if err := uow.Add(&FItem{ID: base + int64(i), Part: int64(i), Grp: 9, Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	var rows []*FItem
	if err := uow.NewSelect().Model(&rows).Where("id <= ?", foldShards).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		q := int64(1000)
		if r.Qty != nil {
			q += *r.Qty
		}
		r.Qty = &q
	}
	return uow.Commit(ctx)
}

// foldSnapshot is every row of every logical shard, as (shard, id, qty,
// name) strings, sorted.
func (e *foldEnv) foldSnapshot(t *testing.T) []string {
	t.Helper()
	var rows []FItem
	if err := e.plain.NewSelect().Model(&rows).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		id, _ := session.ShardOf(&rows[i])
		q, n := "-", "-"
		if r.Qty != nil {
			q = fmt.Sprint(*r.Qty)
		}
		if r.Name != nil {
			n = *r.Name
		}
		out[i] = fmt.Sprintf("%s %d %s %s", id, r.ID, q, n)
	}
	slices.Sort(out)
	return out
}

// TestFoldTwoPhaseCommitPerServer commits a two-phase unit that wrote on
// all 64 logical shards (16 per server): folded, the shards of one server
// share one transaction, so Commit sends one PREPARE TRANSACTION and one
// COMMIT PREPARED per server other than the coordinator's (whose
// transaction is the decision's, committed in one phase), and one BEGIN per
// server. Without WithFolding the same unit prepares 63 transactions. The
// rows both leave are the same.
func TestFoldTwoPhaseCommitPerServer(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 200, diffSeed(t))
	e2 := newFoldEnv(t, 200, diffSeed(t))
	nServers := len(e.servers)
	// The first fan-out asks each shard where it is, once.
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := foldUnitWrites(t, e.folded, 10000, session.TwoPhase()); err != nil {
		t.Fatalf("folded Commit = %v", err)
	}
	want := slices.Repeat([]int{1}, nServers)
	want[0] = 0 // the coordinator p00's server: its group's transaction holds the decision
	if got := e.countPrefix("PREPARE TRANSACTION"); !slices.Equal(got, want) {
		t.Errorf("folded: PREPARE TRANSACTION per server %v; want %v", got, want)
	}
	if got := e.countPrefix("COMMIT PREPARED"); !slices.Equal(got, want) {
		t.Errorf("folded: COMMIT PREPARED per server %v; want %v", got, want)
	}
	wantBegin := slices.Repeat([]int{1}, nServers)
	wantBegin[0]++ // the coordinator's first two-phase Commit creates the decision table
	if got := e.countPrefix("BEGIN"); !slices.Equal(got, wantBegin) {
		t.Errorf("folded: BEGIN per server %v; want %v", got, wantBegin)
	}
	updates := e.countPrefix("UPDATE")

	snap := e.foldSnapshot(t)

	// A unit that reads p04 first begins server 0's transaction there;
	// the coordinator p00 joins it later, and its group still commits with
	// the decision, in one phase.
	uow := e.folded.Begin(session.TwoPhase())
	var first []*FItem
	if err := uow.NewSelect().Model(&first).Limit(1).Scan(session.WithShardID(ctx, "p04")); err != nil {
		t.Fatal(err)
	}
	for i := range foldShards {
		if err := uow.Add(&FItem{ID: 20000 + int64(i), Part: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.reset()
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("folded Commit, p04 first = %v", err)
	}
	if got := e.countPrefix("PREPARE TRANSACTION"); !slices.Equal(got, want) {
		t.Errorf("folded, p04 first: PREPARE TRANSACTION per server %v; want %v", got, want)
	}
	// Commit's flush begins the other servers' transactions; none is begun
	// for the decision.
	if got := e.countPrefix("BEGIN"); !slices.Equal(got, want) {
		t.Errorf("folded, p04 first: BEGIN per server during Commit %v; want %v", got, want)
	}

	e2.reset()
	if err := foldUnitWrites(t, e2.plain, 10000, session.TwoPhase()); err != nil {
		t.Fatalf("unfolded Commit = %v", err)
	}
	wantPlain := slices.Repeat([]int{foldShards / nServers}, nServers)
	wantPlain[0]--
	if got := e2.countPrefix("PREPARE TRANSACTION"); !slices.Equal(got, wantPlain) {
		t.Errorf("unfolded: PREPARE TRANSACTION per server %v; want %v", got, wantPlain)
	}
	// Each logical shard's statements are its own, folded or not.
	if got := e2.countPrefix("UPDATE"); !slices.Equal(got, updates) {
		t.Errorf("UPDATE per server: unfolded %v, folded %v; want the same", got, updates)
	}
	if b := e2.foldSnapshot(t); !slices.Equal(snap, b) {
		t.Errorf("folded and unfolded commits left different rows (%d and %d)", len(snap), len(b))
	}
	if n := len(e.foldSnapshot(t)); n != 200+2*foldShards {
		t.Errorf("%d rows after the commits; want %d", n, 200+2*foldShards)
	}
}

// TestFoldOnePhaseCommitPerServer is TestFoldTwoPhaseCommitPerServer
// without TwoPhase: one BEGIN and one COMMIT per server.
func TestFoldOnePhaseCommitPerServer(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 200, diffSeed(t))
	e2 := newFoldEnv(t, 200, diffSeed(t))
	nServers := len(e.servers)
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := foldUnitWrites(t, e.folded, 10000); err != nil {
		t.Fatalf("folded Commit = %v", err)
	}
	one := slices.Repeat([]int{1}, nServers)
	if got := e.countPrefix("BEGIN"); !slices.Equal(got, one) {
		t.Errorf("folded: BEGIN per server %v; want %v", got, one)
	}
	if got := e.countPrefix("COMMIT"); !slices.Equal(got, one) {
		t.Errorf("folded: COMMIT per server %v; want %v", got, one)
	}
	if err := foldUnitWrites(t, e2.plain, 10000); err != nil {
		t.Fatalf("unfolded Commit = %v", err)
	}
	if a, b := e.foldSnapshot(t), e2.foldSnapshot(t); !slices.Equal(a, b) {
		t.Errorf("folded and unfolded commits left different rows (%d and %d)", len(a), len(b))
	}
}

// foldTP is 12 logical shards, table per shard, on the three private
// servers of a tpFixture (4 per server, each server's shards WithNamedArg
// clones of one *bun.DB), for the folded two-phase fault tests.
type foldTP struct {
	t       *testing.T
	fx      *tpFixture
	ids     []session.ShardID
	dbs     []*bun.DB // per server
	admin   []*bun.DB // per server, for checks and kills
	s       *session.Session
	servers int
}

const foldTPShards = 12

func newFoldTP(t *testing.T, fx *tpFixture, folded bool, hook func(f *foldTP, stage string, id session.ShardID)) *foldTP {
	t.Helper()
	ctx := context.Background()
	dsns := fx.set.NewDatabases(ctx, t, "ftp")
	f := &foldTP{t: t, fx: fx, servers: len(dsns)}
	for _, dsn := range dsns {
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithDialTimeout(2*time.Second),
			pgdriver.WithReadTimeout(0), pgdriver.WithWriteTimeout(0)))
		db := bun.NewDB(sqldb, tpDialect)
		t.Cleanup(func() { db.Close() })
		f.dbs = append(f.dbs, db)
		f.admin = append(f.admin, openDriver(t, "pgdriver", dsn))
	}
	shards := map[session.ShardID]bun.IDB{}
	byPart := map[int64]session.ShardID{}
	for i := range foldTPShards {
		id := foldShardID(i)
		db := f.dbs[i%f.servers].WithNamedArg("prefix", bun.Safe(string(id)+"_"))
		if _, err := db.NewCreateTable().Model((*FItem)(nil)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		shards[id] = db
		byPart[int64(i)] = id
		f.ids = append(f.ids, id)
	}
	vm := chooser.NewValueMap("part", byPart)
	opts := []session.Option{session.WithShardOrder(f.ids...), session.WithCoordinator(f.ids[0])}
	if folded {
		opts = append(opts, session.WithFolding())
	}
	if hook != nil {
		opts = append(opts, session.WithTwoPhaseHook(func(stage string, id session.ShardID) { hook(f, stage, id) }))
	}
	var err error
	if f.s, err = session.New(shards, vm, chooser.All, vm, opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Recover(ctx); err != nil { // creates the decision table
		t.Fatal(err)
	}
	return f
}

// unit begins a two-phase unit that inserts one item on every logical
// shard and flushes it.
func (f *foldTP) unit() *session.UnitOfWork {
	f.t.Helper()
	uow := f.s.Begin(session.TwoPhase())
	for i := range foldTPShards {
		if err := uow.Add(&FItem{ID: int64(i + 1), Part: int64(i)}); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := uow.Flush(context.Background()); err != nil {
		f.t.Fatalf("Flush = %v", err)
	}
	return uow
}

// rows returns how many rows each logical shard's table holds.
func (f *foldTP) rows() []int {
	f.t.Helper()
	out := make([]int, foldTPShards)
	for i, id := range f.ids {
		err := f.admin[i%f.servers].NewRaw("SELECT count(*) FROM "+string(id)+"_items").Scan(context.Background(), &out[i])
		if err != nil {
			f.t.Fatalf("count rows of %s: %v", id, err)
		}
	}
	return out
}

// prepared returns how many prepared transactions each server's database
// holds.
func (f *foldTP) prepared() []int {
	f.t.Helper()
	out := make([]int, f.servers)
	for i, db := range f.admin {
		err := db.NewRaw("SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()").Scan(context.Background(), &out[i])
		if err != nil {
			f.t.Fatalf("count prepared on server %d: %v", i, err)
		}
	}
	return out
}

// killAll terminates the session's connections on every server, as the
// death of the committing process would.
func (f *foldTP) killAll() {
	f.t.Helper()
	for i, db := range f.admin {
		_, err := db.ExecContext(context.Background(),
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
		if err != nil {
			f.t.Errorf("terminate backends on server %d: %v", i, err)
		}
	}
}

// recoverAndCheck restarts every server, runs Recover (on s, or the case's
// session), and checks that every logical shard holds its row (want) or
// none, with no prepared transaction or decision record left.
func (f *foldTP) recoverAndCheck(s *session.Session, want bool) session.Recovered {
	f.t.Helper()
	ctx := context.Background()
	for i := range f.servers {
		if srv := f.fx.set.Server(i); !srv.Running() {
			if err := srv.Start(ctx); err != nil {
				f.t.Fatalf("start server %d: %v", i, err)
			}
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, db := range append(slices.Clone(f.dbs), f.admin...) {
		for db.PingContext(ctx) != nil {
			if time.Now().After(deadline) {
				f.t.Fatal("a server does not answer")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s == nil {
		s = f.s
	}
	rec, err := s.Recover(ctx)
	if err != nil {
		f.t.Fatalf("Recover = %v", err)
	}
	n := 0
	if want {
		n = 1
	}
	if got := f.rows(); !slices.Equal(got, slices.Repeat([]int{n}, foldTPShards)) {
		f.t.Errorf("rows per logical shard after Recover = %v; want %d each (recovered %+v)", got, n, rec)
	}
	if got := f.prepared(); !slices.Equal(got, make([]int, f.servers)) {
		f.t.Errorf("prepared transactions after Recover = %v; want none", got)
	}
	var records int
	if err := f.admin[0].NewRaw("SELECT count(*) FROM bunshard_decisions").Scan(ctx, &records); err != nil || records != 0 {
		f.t.Errorf("decision records after Recover = %d (%v); want none", records, err)
	}
	return rec
}

// TestFoldTwoPhaseFaults breaks a folded two-phase Commit over 12 logical
// shards on 3 servers (one transaction per server) at each phase: a crash
// after the PREPAREs (one per server but the coordinator's), a crash after
// the decision, a server stopped and a server frozen before PREPARE, and a
// folded session recovering what an unfolded one left (one prepared
// transaction per logical shard, the gids of before). Every logical shard
// ends with its row or none, all alike, and Recover leaves nothing
// prepared.
func TestFoldTwoPhaseFaults(t *testing.T) {
	fx := newTPFixture(t)
	ctx := context.Background()

	t.Run("crash between prepare and decision", func(t *testing.T) {
		f := newFoldTP(t, fx, true, func(_ *foldTP, stage string, _ session.ShardID) {
			if stage == "prepared" {
				panic(crashed{})
			}
		})
		commitCrashing(t, f.unit())
		f.killAll()
		if got := f.prepared(); !slices.Equal(got, []int{0, 1, 1}) {
			t.Fatalf("prepared per server after the crash = %v; want one on each server but the coordinator's", got)
		}
		rec := f.recoverAndCheck(nil, false)
		if len(rec.RolledBack) != 2 {
			t.Errorf("Recover = %+v; want 2 rolled back", rec)
		}
	})

	t.Run("crash between decision and commit", func(t *testing.T) {
		f := newFoldTP(t, fx, true, func(_ *foldTP, stage string, _ session.ShardID) {
			if stage == "decided" {
				panic(crashed{})
			}
		})
		commitCrashing(t, f.unit())
		f.killAll()
		// The coordinator's server committed with the decision: its four shards.
		want := make([]int, foldTPShards)
		for i := 0; i < foldTPShards; i += f.servers {
			want[i] = 1
		}
		if got := f.rows(); !slices.Equal(got, want) {
			t.Errorf("rows before Recover = %v; want %v", got, want)
		}
		rec := f.recoverAndCheck(nil, true)
		if len(rec.Committed) != 2 {
			t.Errorf("Recover = %+v; want 2 committed", rec)
		}
	})

	t.Run("server stopped before prepare", func(t *testing.T) {
		f := newFoldTP(t, fx, true, nil)
		uow := f.unit()
		if err := fx.set.Server(2).Stop(ctx); err != nil {
			t.Fatal(err)
		}
		ce := commitErr(t, uow.Commit(ctx))
		if len(ce.Committed) != 0 || ce.Decision != "" || len(ce.Failed) != foldTPShards {
			t.Errorf("CommitError = %+v; want nothing committed, no decision, every logical shard failed", ce)
		}
		f.recoverAndCheck(nil, false)
	})

	t.Run("server frozen at prepare", func(t *testing.T) {
		frozen := false
		f := newFoldTP(t, fx, true, func(f *foldTP, stage string, _ session.ShardID) {
			if stage == "txid" && !frozen {
				if err := fx.set.Server(1).Freeze(); err != nil {
					t.Errorf("freeze: %v", err)
					return
				}
				frozen = true
			}
		})
		thaw := func() {
			if frozen {
				frozen = false
				if err := fx.set.Server(1).Thaw(); err != nil {
					t.Errorf("thaw: %v", err)
				}
			}
		}
		t.Cleanup(thaw)
		uow := f.unit()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := within(t, func() error { return uow.Commit(cctx) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Commit = %v; want it to match context.DeadlineExceeded", err)
		}
		ce := commitErr(t, err)
		if len(ce.Committed) != 0 || ce.Decision != "" {
			t.Errorf("CommitError = %+v; want nothing committed and no decision", ce)
		}
		thaw()
		f.recoverAndCheck(nil, false)
	})

	t.Run("unfolded crash, folded Recover", func(t *testing.T) {
		f := newFoldTP(t, fx, false, func(_ *foldTP, stage string, _ session.ShardID) {
			if stage == "decided" {
				panic(crashed{})
			}
		})
		commitCrashing(t, f.unit())
		f.killAll()
		if got := f.prepared(); !slices.Equal(got, []int{3, 4, 4}) {
			t.Fatalf("prepared per server after the crash = %v; want one per logical shard but the coordinator", got)
		}
		shards := map[session.ShardID]bun.IDB{}
		for i, id := range f.ids {
			shards[id] = f.dbs[i%f.servers].WithNamedArg("prefix", bun.Safe(string(id)+"_"))
		}
		vm := chooser.NewValueMap("part", map[int64]session.ShardID{0: f.ids[0]})
		folded, err := session.New(shards, vm, chooser.All, vm, session.WithShardOrder(f.ids...),
			session.WithCoordinator(f.ids[0]), session.WithFolding())
		if err != nil {
			t.Fatal(err)
		}
		rec := f.recoverAndCheck(folded, true)
		if len(rec.Committed) != foldTPShards-1 {
			t.Errorf("Recover = %+v; want %d committed", rec, foldTPShards-1)
		}
	})
}

// TestFoldUnitSharedAbort: in a folded unit, p00 and p04 (one server)
// share a transaction, so a statement that fails on p04 aborts p00's
// writes too. Commit must fail and leave p00's row unwritten, not send a
// COMMIT that PostgreSQL answers by rolling back; and Iter, which would
// keep two results open on the one connection, is refused.
func TestFoldUnitSharedAbort(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 50, diffSeed(t))
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	if e.serverOf["p00"] != e.serverOf["p04"] {
		t.Fatal("p00 and p04 are on different servers")
	}
	for k, twoPhase := range []bool{false, true} {
		var opts []session.UnitOption
		if twoPhase {
			opts = append(opts, session.TwoPhase())
		}
		uow := e.folded.Begin(opts...)
		if err := uow.Add(&FItem{ID: int64(5000 + 10*k), Part: 0}, &FItem{ID: int64(5001 + 10*k), Part: 1}); err != nil {
			t.Fatal(err)
		}
		if err := uow.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var rows []*FItem
		err := uow.NewSelect().Model(&rows).Where("no_such_column = 1").Scan(session.WithShardID(ctx, "p04"))
		if err == nil {
			t.Fatal("a select of a column that does not exist succeeded")
		}
		err = uow.Commit(ctx)
		if err == nil {
			t.Errorf("two-phase %v: Commit after a failed statement on p04 = nil; want an error (p00 shares its aborted transaction)", twoPhase)
		} else if !strings.Contains(err.Error(), "p04") {
			t.Errorf("two-phase %v: Commit = %v; want it to name p04", twoPhase, err)
		}
		_ = uow.Rollback(ctx)
		n, err := e.plain.NewSelect().Model((*FItem)(nil)).Where("id >= 5000").Count(ctx)
		if err != nil || n != 0 {
			t.Errorf("two-phase %v: %d rows of the failed unit (%v); want none", twoPhase, n, err)
		}
	}

	err := e.folded.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		for _, err := range session.Iter[FItem](ctx, u.NewSelect().Model((*FItem)(nil))) {
			return err
		}
		return nil
	})
	if !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("Iter in a folded unit = %v; want ErrUnsupported", err)
	}
}
