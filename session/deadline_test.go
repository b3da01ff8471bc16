package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// frozenBound is how long a test waits for a call against a frozen shard
// before it fails instead of hanging. It is no speed threshold: a call that
// honours its 3 s deadline returns long before; one that waits for the
// shard (the driver has no read timeout here) never would.
const frozenBound = 30 * time.Second

// freezer is a session over the fixture's databases whose driver has no
// read or write timeout, so only the caller's context can end a statement
// on a frozen server, and the servers behind the shards.
type freezer struct {
	*fixture
	s   *session.Session
	dbs map[session.ShardID]*bun.DB
}

func newFreezer(t *testing.T) *freezer {
	t.Helper()
	if pgtest.Shared().External() {
		t.Skip("freezing a server needs servers the harness started, not " + pgtest.EnvVar)
	}
	f := newFixture(t)
	z := &freezer{fixture: f, dbs: map[session.ShardID]*bun.DB{}}
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range weather.Shards {
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(f.dsns[i]),
			pgdriver.WithReadTimeout(0), pgdriver.WithWriteTimeout(0)))
		db := bun.NewDB(sqldb, dialect).WithQueryHook(f.counts[id])
		t.Cleanup(func() { db.Close() })
		weather.Register(db)
		shards[id], z.dbs[id] = db, db
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	z.s = s
	return z
}

// freeze freezes the server of shard id until thaw (or the test's end).
func (z *freezer) freeze(t *testing.T, id session.ShardID) (thaw func()) {
	t.Helper()
	srv := pgtest.Shared().Server(indexOf(id))
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw = func() {
		if !thawed {
			thawed = true
			if err := srv.Thaw(); err != nil {
				t.Errorf("thaw %s: %v", id, err)
			}
		}
	}
	t.Cleanup(thaw)
	return thaw
}

func indexOf(id session.ShardID) int {
	for i, s := range weather.Shards {
		if s == id {
			return i
		}
	}
	panic("no shard " + id)
}

// within runs call on a goroutine and returns its error, failing the test
// if it has not returned after frozenBound.
func within(t *testing.T, call func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- call() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(frozenBound):
		t.Fatalf("the call had not returned after %v: it waits for the frozen shard", frozenBound)
		return nil
	}
}

// wantShardDeadline checks that err names shard id in a *ShardError and
// says that the context's deadline passed.
func wantShardDeadline(t *testing.T, err error, id session.ShardID) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want it to match context.DeadlineExceeded", err)
	}
	se, ok := errors.AsType[*session.ShardError](err)
	if !ok || se.Shard != id {
		t.Errorf("err = %v; want a *ShardError naming shard %s", err, id)
	}
}

// TestFrozenShardFlush freezes a shard's server (SIGSTOP: connections stay
// open, nothing answers) and flushes a unit that writes there, under a 3 s
// deadline: the flush returns with an error naming the shard and the
// deadline, both when the unit's transaction there is still to begin (the
// BEGIN hangs) and when it is open (the INSERT hangs). The driver has no
// read timeout, so without the caller's context the flush would never
// return.
func TestFrozenShardFlush(t *testing.T) {
	z := newFreezer(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, begun := range []bool{false, true} {
		name := map[bool]string{false: "BEGIN hangs", true: "INSERT hangs"}[begun]
		t.Run(name, func(t *testing.T) {
			uow := z.s.Begin()
			if begun { // open europe's transaction before the freeze
				if _, err := uow.DB(context.Background(), "europe"); err != nil {
					t.Fatal(err)
				}
			}
			loc := &weather.Location{ID: 1, Continent: "Europe", City: "Oslo"}
			if err := uow.Add(loc); err != nil {
				t.Fatal(err)
			}
			thaw := z.freeze(t, "europe")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := within(t, func() error { return uow.Flush(ctx) })
			wantShardDeadline(t, err, "europe")
			thaw()
			_ = uow.Rollback(context.Background())
			if n := z.s.OpenUnits(); n != 0 {
				t.Errorf("OpenUnits after Rollback = %d; want 0", n)
			}
			if ids := z.rowsOn(t, "europe", "weather_locations"); len(ids) != 0 {
				t.Errorf("europe holds locations %v after the failed flush; want none", ids)
			}
		})
	}
}

// TestFrozenShardCommitOnePhase freezes one of the two shards a unit wrote
// on, after its flush, and commits under a 3 s deadline: Commit returns a
// *CommitError naming the frozen shard as not committed (its outcome
// unknown) and the other as committed, and the error matches
// context.DeadlineExceeded.
func TestFrozenShardCommitOnePhase(t *testing.T) {
	z := newFreezer(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	uow := z.s.Begin()
	locs := []*weather.Location{{ID: 1, Continent: "Asia", City: "Tokyo"}, {ID: 2, Continent: "Europe", City: "Oslo"}}
	if err := uow.Add(&locs); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	thaw := z.freeze(t, "europe")
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := within(t, func() error { return uow.Commit(dctx) })
	ce, ok := errors.AsType[*session.CommitError](err)
	if !ok {
		t.Fatalf("Commit = %v; want a *CommitError", err)
	}
	if len(ce.Failed) != 1 || ce.Failed[0] != "europe" || len(ce.Committed) != 1 || ce.Committed[0] != "asia" {
		t.Errorf("CommitError committed %v, failed %v; want asia committed, europe not", ce.Committed, ce.Failed)
	}
	wantShardDeadline(t, err, "europe")
	thaw()
	if got := z.rowsOn(t, "asia", "weather_locations"); len(got) != 1 {
		t.Errorf("asia holds %v; want the committed location 1", got)
	}
	if n := z.s.OpenUnits(); n != 0 {
		t.Errorf("OpenUnits after Commit = %d; want 0", n)
	}
}

// TestCommitCancelledSendsNothing commits a flushed unit with a context
// that is already cancelled: Commit sends no COMMIT, rolls every shard
// back and returns an error matching context.Canceled.
func TestCommitCancelledSendsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	uow := s.Begin()
	locs := []*weather.Location{{ID: 1, Continent: "Asia", City: "Tokyo"}, {ID: 2, Continent: "Europe", City: "Oslo"}}
	if err := uow.Add(&locs); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := uow.Commit(cctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit(cancelled) = %v; want an error matching context.Canceled", err)
	}
	if c := f.statementsLike("COMMIT"); !slices.Equal(c, zero4) {
		t.Errorf("COMMITs sent per shard = %v; want none", c)
	}
	for _, id := range []session.ShardID{"asia", "europe"} {
		if got := f.rowsOn(t, id, "weather_locations"); len(got) != 0 {
			t.Errorf("%s holds %v after a cancelled commit; want nothing", id, got)
		}
	}
	if n := s.OpenUnits(); n != 0 {
		t.Errorf("OpenUnits = %d; want 0", n)
	}
}

// TestFailFastDoesNotWaitForFrozenShard runs a select over every shard
// while one shard fails at once (its table is gone) and another is frozen,
// with no deadline and no driver timeout: the select returns the failing
// shard's error while the frozen shard still hangs, and the goroutine left
// on the frozen shard ends once it is thawed (goleak).
func TestFailFastDoesNotWaitForFrozenShard(t *testing.T) {
	z := newFreezer(t)
	ctx := context.Background()
	if _, err := z.dbs["asia"].ExecContext(ctx, "DROP TABLE weather_reports CASCADE"); err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	thaw := z.freeze(t, "europe")
	var got []weather.Report
	err := within(t, func() error { return z.s.NewSelect().Model(&got).Scan(ctx) })
	se, ok := errors.AsType[*session.ShardError](err)
	if !ok || se.Shard != "asia" {
		t.Fatalf("Scan = %v; want the *ShardError of asia, whose table is gone", err)
	}
	thaw()
}

// TestRunInTx checks that RunInTx always ends its unit: it commits when fn
// returns nil, rolls back when fn returns an error (and returns that error)
// or panics (and lets the panic go on), and in every case leaves no
// connection in use on any shard and no open unit.
func TestRunInTx(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	errBoom := errors.New("boom")
	add := func(id int64) func(context.Context, *session.UnitOfWork) error {
		return func(ctx context.Context, uow *session.UnitOfWork) error {
			var asia *weather.Location // read asia: its transaction opens too
			_ = uow.Get(ctx, &asia, int64(-1))
			return uow.Add(&[]*weather.Location{{ID: id, Continent: "Europe", City: "Oslo"}, {ID: id + 1, Continent: "Asia", City: "Tokyo"}})
		}
	}
	noneInUse := func(t *testing.T) {
		t.Helper()
		for _, id := range weather.Shards {
			if n := f.shards[id].(*bun.DB).Stats().InUse; n != 0 {
				t.Errorf("shard %s has %d connections in use; want 0", id, n)
			}
		}
		if n := s.OpenUnits(); n != 0 {
			t.Errorf("OpenUnits = %d; want 0", n)
		}
	}

	if err := s.RunInTx(ctx, nil, add(10)); err != nil {
		t.Fatalf("RunInTx(nil error) = %v", err)
	}
	if got := f.rowsOn(t, "europe", "weather_locations"); !slices.Equal(got, []int64{10}) {
		t.Errorf("after a committed RunInTx europe holds %v; want [10]", got)
	}
	noneInUse(t)

	err := s.RunInTx(ctx, nil, func(ctx context.Context, uow *session.UnitOfWork) error {
		if err := add(20)(ctx, uow); err != nil {
			return err
		}
		if err := uow.Flush(ctx); err != nil { // the rows are sent, then rolled back
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("RunInTx(fn error) = %v; want fn's error", err)
	}
	noneInUse(t)

	func() {
		defer func() {
			if p := recover(); p != errBoom {
				t.Errorf("recovered %v; want fn's panic value re-panicked", p)
			}
		}()
		_ = s.RunInTx(ctx, nil, func(ctx context.Context, uow *session.UnitOfWork) error {
			if err := add(30)(ctx, uow); err != nil {
				return err
			}
			if err := uow.Flush(ctx); err != nil {
				return err
			}
			panic(errBoom)
		})
	}()
	noneInUse(t)
	for _, id := range []session.ShardID{"asia", "europe"} {
		if got := f.rowsOn(t, id, "weather_locations"); len(got) != 1 {
			t.Errorf("%s holds %v; want only the committed row, the rolled-back ones gone", id, got)
		}
	}
}

// TestOpenUnitsSeesAbandonedUnit checks that a unit left without Commit or
// Rollback shows in OpenUnits, with its connections in use, until it ends.
func TestOpenUnitsSeesAbandonedUnit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	uow := s.Begin()
	if n := s.OpenUnits(); n != 0 {
		t.Errorf("OpenUnits after Begin = %d; want 0 (Begin sends nothing)", n)
	}
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.Using("asia").OpenUnits(); n != 1 {
		t.Errorf("OpenUnits (seen from a view) with a unit that holds transactions = %d; want 1", n)
	}
	if n := f.shards["europe"].(*bun.DB).Stats().InUse; n != 1 {
		t.Errorf("europe has %d connections in use; want the unit's 1", n)
	}
	if err := uow.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.OpenUnits(); n != 0 {
		t.Errorf("OpenUnits after Rollback = %d; want 0", n)
	}
}

// cancelAfter is a query hook that cancels a context after the first
// statement it sees.
type cancelAfter struct{ cancel context.CancelFunc }

func (h cancelAfter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }
func (h cancelAfter) AfterQuery(context.Context, *bun.QueryEvent)                        { h.cancel() }

// TestFanOutCancelledMidwayFails runs a select one shard at a time
// (WithConcurrency(1)) whose context is cancelled once the first shard has
// answered: the select fails with context.Canceled instead of returning
// the first shard's rows as if they were all.
func TestFanOutCancelledMidwayFails(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shards := map[session.ShardID]bun.IDB{}
	for id, db := range f.shards {
		shards[id] = db
	}
	shards[weather.Shards[0]] = f.shards[weather.Shards[0]].(*bun.DB).WithQueryHook(cancelAfter{cancel})
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...), session.WithConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	var got []weather.Location
	err = s.NewSelect().Model(&got).Scan(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan cancelled after the first of 4 shards = %v (%d rows); want context.Canceled", err, len(got))
	}
}
