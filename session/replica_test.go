package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// replicated is the weather fixture with streaming replicas of some shards,
// each replica a *bun.DB on the same database of a hot standby, with its own
// statement counter.
type replicated struct {
	*fixture
	servers  map[session.ShardID][]*pgtest.Server
	replicas map[session.ShardID][]bun.IDB
	rcounts  map[session.ShardID][]*counter
}

// newReplicated makes the fixture and starts n[shard] replicas of the
// servers of those shards. Replicas stream the whole cluster, so they hold
// the fixture's databases too. The test servers run with synchronous_commit
// off; with syncCommit the primaries' connections turn it on.
func newReplicated(t *testing.T, n map[session.ShardID]int, syncCommit bool) *replicated {
	t.Helper()
	return newReplicatedOn(t, "pgdriver", n, syncCommit)
}

// newReplicatedOn is newReplicated with the replicas' *bun.DBs on the named
// driver (see drivers).
func newReplicatedOn(t *testing.T, driver string, n map[session.ShardID]int, syncCommit bool) *replicated {
	t.Helper()
	ctx := context.Background()
	if pgtest.Shared().External() {
		t.Skip("replica tests start hot standbys of their own servers; BUNSHARD_TEST_PG names external servers")
	}
	r := &replicated{
		fixture:  newFixture(t),
		servers:  map[session.ShardID][]*pgtest.Server{},
		replicas: map[session.ShardID][]bun.IDB{},
		rcounts:  map[session.ShardID][]*counter{},
	}
	if syncCommit {
		for i, id := range weather.Shards {
			db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(r.dsns[i]),
				pgdriver.WithConnParams(map[string]any{"synchronous_commit": "on"}))), r.shards[id].Dialect()).WithQueryHook(r.counts[id])
			t.Cleanup(func() { db.Close() })
			r.shards[id] = db
		}
	}
	for i, id := range weather.Shards {
		for range n[id] {
			srv, err := pgtest.Shared().Server(i).StartReplica(ctx)
			if err != nil {
				t.Fatalf("StartReplica of %s: %v", id, err)
			}
			t.Cleanup(func() { _ = srv.Stop(context.Background()) })
			u, err := url.Parse(r.dsns[i])
			if err != nil {
				t.Fatal(err)
			}
			c := &counter{}
			db := openDriverDialect(t, driver, srv.DSN(strings.TrimPrefix(u.Path, "/")), r.shards[id].Dialect().(*pgdialect.Dialect)).WithQueryHook(c)
			r.servers[id] = append(r.servers[id], srv)
			r.replicas[id] = append(r.replicas[id], db)
			r.rcounts[id] = append(r.rcounts[id], c)
		}
	}
	return r
}

func (r *replicated) session(t *testing.T, opts ...session.Option) *session.Session {
	t.Helper()
	for id, dbs := range r.replicas {
		opts = append(opts, session.WithReplicas(id, dbs...))
	}
	s := r.fixture.session(t, opts...)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	return s
}

func (r *replicated) reset() {
	r.fixture.reset()
	for _, cs := range r.rcounts {
		for _, c := range cs {
			c.reset()
		}
	}
}

// onReplicas returns the statements each replica of id ran since reset.
func (r *replicated) onReplicas(id session.ShardID) []int {
	var out []int
	for _, c := range r.rcounts[id] {
		out = append(out, len(c.statements()))
	}
	return out
}

// caughtUp waits until every replica has replayed all its primary committed
// so far, as the session's checks see it. A write committed synchronously
// first flushes the primary's WAL, whatever synchronous_commit the writes ran
// with (a transaction that wrote no WAL would commit asynchronously anyway).
func (r *replicated) caughtUp(t *testing.T, s *session.Session) {
	t.Helper()
	ctx := context.Background()
	need := map[session.ShardID]session.LSN{}
	for id := range r.replicas {
		err := r.shards[id].RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO on; "+
				"CREATE TABLE IF NOT EXISTS flush_marker (n int); INSERT INTO flush_marker VALUES (1)")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		need[id] = lsnOf(t, r.shards[id], "pg_current_wal_flush_lsn()")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = s.CheckReplicas(ctx)
		done := true
		for _, st := range s.Replicas() {
			if !st.Healthy || st.ReplayLSN < need[st.Shard] {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas did not catch up in 30 s: %+v; want %v", s.Replicas(), need)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lsnOf reads a pg_lsn expression on db, and checks LSN.String against
// PostgreSQL's rendering.
func lsnOf(t *testing.T, db bun.IDB, expr string) session.LSN {
	t.Helper()
	var pos string
	if err := db.QueryRowContext(context.Background(), "SELECT "+expr+"::text").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	var hi, lo uint64
	h, l, _ := strings.Cut(pos, "/")
	for _, c := range h {
		hi = hi*16 + uint64(strings.IndexRune("0123456789ABCDEF", c))
	}
	for _, c := range l {
		lo = lo*16 + uint64(strings.IndexRune("0123456789ABCDEF", c))
	}
	lsn := session.LSN(hi<<32 | lo)
	if lsn.String() != pos {
		t.Fatalf("LSN(%q).String() = %q", pos, lsn.String())
	}
	return lsn
}

// TestReplicaReadsAndWrites: reads go to the replicas, in turns, relation
// queries included; writes and WithPrimary reads go to the primary; shards
// without replicas are unaffected.
func TestReplicaReadsAndWrites(t *testing.T) {
	ctx := context.Background()
	r := newReplicated(t, map[session.ShardID]int{"north_america": 2, "asia": 1}, false)
	s := r.session(t)
	f := r.fixture
	f.seed(t, s, weather.Generate(8, 3, 11)) // writes
	r.caughtUp(t, s)

	// Writes went to the primaries only.
	r.reset()
	extra := []*weather.Location{{ID: 100, Continent: "North America", City: "N"}, {ID: 101, Continent: "Asia", City: "A"}}
	if err := s.Insert(ctx, &extra); err != nil {
		t.Fatal(err)
	}
	extra[0].City = "N2"
	if err := s.Update(ctx, extra[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewDelete().Model((*weather.Location)(nil)).WhereShardKey("continent", "Asia").Where("id = 101").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.perShard(); !slices.Equal(got, []int{2, 2, 0, 0}) {
		t.Errorf("insert, update, delete ran %v statements on the primaries; want [2 2 0 0]", got)
	}
	if na, as := r.onReplicas("north_america"), r.onReplicas("asia"); !slices.Equal(na, []int{0, 0}) || !slices.Equal(as, []int{0}) {
		t.Errorf("writes ran %v and %v statements on the replicas; want none", na, as)
	}
	r.caughtUp(t, s)

	// Gets of north_america take turns on its two replicas.
	r.reset()
	for range 4 {
		var loc weather.Location
		if err := s.Using("north_america").Get(ctx, &loc, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got, prim := r.onReplicas("north_america"), f.perShard()[0]; !slices.Equal(got, []int{2, 2}) || prim != 0 {
		t.Errorf("4 Gets ran %v statements on the replicas and %d on the primary; want [2 2] and 0", got, prim)
	}

	// A fan-out with a has-many relation: both statements on a replica where
	// there is one, on the primary where there is none.
	r.reset()
	var locs []*weather.Location
	if err := s.NewSelect().Model(&locs).Relation("Reports").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(locs) != 9 || len(locs[0].Reports) != 3 {
		t.Fatalf("select = %d locations, %d reports on the first; want 9 and 3", len(locs), len(locs[0].Reports))
	}
	na, as := r.onReplicas("north_america"), r.onReplicas("asia")
	if na[0]+na[1] != 2 || as[0] != 2 || !slices.Equal(f.perShard(), []int{0, 0, 2, 2}) {
		t.Errorf("select with relation ran %v, %v on replicas and %v on primaries; want 2 on a north_america replica, "+
			"2 on the asia replica, [0 0 2 2] on primaries", na, as, f.perShard())
	}
	for _, l := range locs {
		want := weather.ShardOfContinent[l.Continent]
		if sh, _ := l.Shard(); sh != want {
			t.Errorf("location %d token = %q; want %q (the shard, not the replica)", l.ID, sh, want)
		}
	}

	// Count and Exists too; WithPrimary sends reads to the primary.
	r.reset()
	n, err := s.NewSelect().Model((*weather.Report)(nil)).Options(session.SetShardID("asia")).Count(ctx)
	if err != nil || n != 6 {
		t.Fatalf("Count on asia = %d, %v; want 6", n, err)
	}
	if as, prim := r.onReplicas("asia"), f.perShard()[1]; as[0] != 1 || prim != 0 {
		t.Errorf("Count ran %d on the replica, %d on the primary; want 1 and 0", as[0], prim)
	}
	r.reset()
	var loc weather.Location
	if err := s.Using("asia").Get(session.WithPrimary(ctx), &loc, 2); err != nil {
		t.Fatal(err)
	}
	if as, prim := r.onReplicas("asia"), f.perShard()[1]; as[0] != 0 || prim != 1 {
		t.Errorf("Get WithPrimary ran %d on the replica, %d on the primary; want 0 and 1", as[0], prim)
	}

	st := s.Replicas()
	if len(st) != 3 || st[0].Shard != "north_america" || st[1].Index != 1 || st[2].Shard != "asia" {
		t.Fatalf("Replicas() = %+v; want north_america 0, 1 and asia 0", st)
	}
	for _, x := range st {
		if !x.Healthy || x.Err != nil || x.ReplayLSN == 0 || x.Checked.IsZero() {
			t.Errorf("replica %s/%d = %+v; want healthy and checked", x.Shard, x.Index, x)
		}
	}
}

// TestReadYourWrites pauses a replica's replay, so that it lags for sure:
// reads that must see a write go to the primary until the replica has
// replayed it, then to the replica again; plain reads see the lag. It runs
// with synchronous_commit on (the write position is recorded) and off (the
// insert position).
func TestReadYourWrites(t *testing.T) {
	for _, sync := range []bool{true, false} {
		t.Run(fmt.Sprintf("synchronous_commit=%v", map[bool]string{true: "on", false: "off"}[sync]), func(t *testing.T) {
			testReadYourWrites(t, sync)
		})
	}
}

func testReadYourWrites(t *testing.T, syncCommit bool) {
	ctx := context.Background()
	r := newReplicated(t, map[session.ShardID]int{"europe": 1}, syncCommit)
	s := r.session(t)
	f := r.fixture
	r.caughtUp(t, s)
	replica := r.replicas["europe"][0]
	if _, err := replica.ExecContext(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_, _ = replica.ExecContext(context.Background(), "SELECT pg_wal_replay_resume()")
		}
	}()

	ryw := s.WithReadYourWrites(ctx)
	if s.WithReadYourWrites(ryw) != ryw {
		t.Error("WithReadYourWrites on a context that has a tracker made a new one")
	}
	loc := &weather.Location{ID: 7, Continent: "Europe", City: "Oslo"}
	if err := s.Insert(ryw, loc); err != nil {
		t.Fatal(err)
	}

	// Without the tracker a read goes to the lagging replica and misses it.
	r.reset()
	var got weather.Location
	if err := s.Get(ctx, &got, 7); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Get on the paused replica = %v; want sql.ErrNoRows (the replica lags)", err)
	}
	if rc := r.onReplicas("europe")[0]; rc != 1 || f.perShard()[2] != 0 {
		t.Errorf("plain Get ran %d on the replica and %d on the primary; want 1 and 0", rc, f.perShard()[2])
	}

	// With it, reads see the write, from other goroutines too.
	r.reset()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			var got weather.Location
			errs[i] = s.Get(ryw, &got, 7)
			if errs[i] == nil && got.City != "Oslo" {
				errs[i] = errors.New("got " + got.City)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Gets with the tracker = %v", err)
	}
	var cities []string
	if err := s.NewSelect().Model((*weather.Location)(nil)).Column("city").WhereShardKey("continent", "Europe").Scan(ryw, &cities); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cities, []string{"Oslo"}) {
		t.Errorf("select with the tracker = %v; want [Oslo]", cities)
	}
	if rc, prim := r.onReplicas("europe")[0], f.perShard()[2]; rc != 0 || prim != 5 {
		t.Errorf("reads with the tracker ran %d on the replica and %d on the primary; want 0 and 5", rc, prim)
	}
	// A statement-form write raises the mark as well.
	if _, err := s.NewUpdate().Model((*weather.Location)(nil)).Set("city = 'Bergen'").Where("id = 7").Exec(ryw); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(ryw, &got, 7); err != nil || got.City != "Bergen" {
		t.Errorf("Get after the update = %q, %v; want Bergen", got.City, err)
	}

	// Once the replica has replayed the writes, tracked reads use it again.
	if _, err := replica.ExecContext(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	resumed = true
	r.caughtUp(t, s)
	r.reset()
	if err := s.Get(ryw, &got, 7); err != nil || got.City != "Bergen" {
		t.Fatalf("Get after catching up = %q, %v; want Bergen", got.City, err)
	}
	if rc, prim := r.onReplicas("europe")[0], f.perShard()[2]; rc != 1 || prim != 0 {
		t.Errorf("Get after catching up ran %d on the replica and %d on the primary; want 1 and 0", rc, prim)
	}
}

// TestDeadReplicaSkipped stops, restarts and kills a replica under a session
// that checks every 50 ms: reads fall back to the primary and come back.
func TestDeadReplicaSkipped(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) { testDeadReplicaSkipped(t, driver) })
	}
}

func testDeadReplicaSkipped(t *testing.T, driver string) {
	ctx := context.Background()
	leakBefore := goleak.IgnoreCurrent()
	r := newReplicatedOn(t, driver, map[session.ShardID]int{"asia": 1}, false)
	s := r.session(t, session.WithReplicaCheck(50*time.Millisecond, time.Second))
	f := r.fixture
	f.seed(t, s, weather.Generate(8, 0, 5))
	r.caughtUp(t, s)
	srv := r.servers["asia"][0]
	get := func() {
		t.Helper()
		var loc weather.Location
		if err := s.Using("asia").Get(ctx, &loc, 2); err != nil || loc.Continent != "Asia" {
			t.Fatalf("Get(2) = %+v, %v; want the Asian location", loc, err)
		}
	}
	healthy := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for s.Replicas()[0].Healthy != want {
			if time.Now().After(deadline) {
				t.Fatalf("replica healthy = %v after 30 s; want %v (%+v)", !want, want, s.Replicas()[0])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, stop := range []struct {
		name string
		stop func() error
	}{
		{"stop", func() error { return srv.Stop(ctx) }},
		{"kill", srv.Kill},
	} {
		t.Run(stop.name, func(t *testing.T) {
			r.reset()
			get() // opens a pooled connection to the replica
			if rc := r.onReplicas("asia")[0]; rc != 1 {
				t.Fatalf("Get ran %d statements on the replica; want 1", rc)
			}
			if err := stop.stop(); err != nil {
				t.Fatal(err)
			}
			// The first read meets the dead connection and is run again on the primary.
			r.reset()
			get()
			if prim := f.perShard()[1]; prim != 1 {
				t.Errorf("Get after %s ran %d statements on the primary; want 1", stop.name, prim)
			}
			if st := s.Replicas()[0]; st.Healthy || st.Err == nil {
				t.Errorf("replica after a failed read = %+v; want down with the error", st)
			}
			// Later reads skip it without trying.
			r.reset()
			for range 3 {
				get()
			}
			if rc, prim := r.onReplicas("asia")[0], f.perShard()[1]; rc != 0 || prim != 3 {
				t.Errorf("3 Gets with the replica down ran %d on it and %d on the primary; want 0 and 3", rc, prim)
			}
			// Back up: a check finds it and reads return to it.
			if err := srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			healthy(true)
			r.reset()
			get()
			if rc, prim := r.onReplicas("asia")[0], f.perShard()[1]; rc != 1 || prim != 0 {
				t.Errorf("Get after restart ran %d on the replica and %d on the primary; want 1 and 0", rc, prim)
			}
		})
	}
	// A stopped replica is also found by the checks alone.
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	healthy(false)
	if err := s.CheckReplicas(ctx); err == nil || !strings.Contains(err.Error(), "asia") {
		t.Errorf("CheckReplicas with the replica stopped = %v; want an error naming asia", err)
	}
	// Close stops the checker: no goroutine of the session is left (the
	// fixture's own pools close at cleanup).
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	goleak.VerifyNone(t, leakBefore, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

func TestReplicaOptionsValidate(t *testing.T) {
	f := newFixture(t)
	db := f.shards["asia"]
	tests := []struct {
		name string
		opt  session.Option
		want error
	}{
		{"unknown shard", session.WithReplicas("mars", db), session.ErrUnknownShard},
		{"nil replica", session.WithReplicas("asia", nil), session.ErrInvalidArgument},
		{"other dialect", session.WithReplicas("asia", openOwnDialect(t, f.dsns[0])), session.ErrInvalidArgument},
	}
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	withTx := maps.Clone(f.shards)
	withTx["asia"] = tx
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := session.New(f.shards, weather.ShardChooser, weather.ByContinent, weather.ByContinent, tt.opt)
			if !errors.Is(err, tt.want) {
				t.Errorf("New(%s) = %v; want %v", tt.name, err, tt.want)
			}
		})
	}
	if _, err := session.New(withTx, weather.ShardChooser, weather.ByContinent, weather.ByContinent,
		session.WithReplicas("asia", db)); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("New with replicas of a bun.Tx shard = %v; want ErrInvalidArgument", err)
	}
	// No replicas: nothing to report, nothing to check, trackers are no-ops.
	s := f.session(t)
	ctx := context.Background()
	if s.Replicas() != nil || s.CheckReplicas(ctx) != nil || s.WithReadYourWrites(ctx) != ctx {
		t.Error("a session without replicas reports replicas or makes trackers")
	}
}

// TestWritesNeverReachReplicas: with healthy replicas that serve reads,
// every kind of write goes to the primaries only, outside a unit of work (an
// object insert, update and delete, statement-form update and delete, a
// Using view's insert) and inside one (a flush's inserts, updates, deletes
// and m2m links, on the session and on a Using view, and RunInTx); a unit's
// reads stay in its transactions too. Each write's row is then on its
// primary.
func TestWritesNeverReachReplicas(t *testing.T) {
	ctx := context.Background()
	r := newReplicated(t, map[session.ShardID]int{"north_america": 1, "asia": 1}, false)
	s := r.session(t)
	f := r.fixture
	f.seed(t, s, weather.Generate(4, 2, 5))
	r.caughtUp(t, s)

	// The replicas do serve reads: a Get on each replicated shard runs there.
	r.reset()
	for _, id := range []session.ShardID{"north_america", "asia"} {
		var loc weather.Location
		if err := s.Using(id).Get(ctx, &loc, map[session.ShardID]int64{"north_america": 1, "asia": 2}[id]); err != nil {
			t.Fatal(err)
		}
	}
	if na, as := r.onReplicas("north_america"), r.onReplicas("asia"); na[0] != 1 || as[0] != 1 {
		t.Fatalf("Gets ran %v and %v statements on the replicas; want [1] and [1] (the replicas must serve reads)", na, as)
	}

	noReplica := func(t *testing.T, what string) {
		t.Helper()
		if na, as := r.onReplicas("north_america"), r.onReplicas("asia"); na[0] != 0 || as[0] != 0 {
			t.Errorf("%s ran %v and %v statements on the north_america and asia replicas; want none", what, na, as)
		}
	}
	onPrimary := func(t *testing.T, id session.ShardID, table string, want ...int64) {
		t.Helper()
		got := f.rowsOn(t, id, table)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s on primary %s = %v; want it to hold %d", table, id, got, w)
			}
		}
	}

	t.Run("outside a unit", func(t *testing.T) {
		r.reset()
		locs := []*weather.Location{{ID: 200, Continent: "North America", City: "N"}, {ID: 201, Continent: "Asia", City: "A"}}
		if err := s.Insert(ctx, &locs); err != nil {
			t.Fatal(err)
		}
		locs[0].City = "N2"
		if err := s.Update(ctx, locs[0]); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, locs[1]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewUpdate().Model((*weather.Location)(nil)).Set("city = city").
			WhereShardKey("continent", "North America", "Asia").Where("id < 100").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewDelete().Model((*weather.Location)(nil)).WhereShardKey("continent", "Asia").Where("id = -1").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Using("asia").Insert(ctx, &weather.Location{ID: 202, Continent: "Asia", City: "U"}); err != nil {
			t.Fatal(err)
		}
		noReplica(t, "insert, update, delete, statement update and delete, a view's insert")
		onPrimary(t, "north_america", "weather_locations", 200)
		onPrimary(t, "asia", "weather_locations", 202)
	})

	t.Run("in a unit", func(t *testing.T) {
		r.reset()
		u := s.Begin()
		var old *weather.Location
		if err := u.Get(ctx, &old, int64(1)); err != nil { // a read in the unit
			t.Fatal(err)
		}
		old.City = "renamed"
		if err := u.Add(&weather.Location{ID: 300, Continent: "North America", City: "N"},
			&weather.Location{ID: 301, Continent: "Asia", City: "A", Tags: []weather.Tag{{ID: 300, Name: "t"}}}); err != nil {
			t.Fatal(err)
		}
		if err := u.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var rows []*weather.Location
		if err := u.NewSelect().Model(&rows).Where("id >= 300").Scan(ctx); err != nil { // read in the unit
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("select in the unit = %d rows; want 2 (its own inserts)", len(rows))
		}
		if err := u.Delete(rows[0]); err != nil {
			t.Fatal(err)
		}
		if err := u.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		err := s.Using("asia").RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
			return u.Add(&weather.Location{ID: 302, Continent: "Asia", City: "V"})
		})
		if err != nil {
			t.Fatal(err)
		}
		noReplica(t, "a unit's get, flush, select, delete, commit and a view's RunInTx")
		onPrimary(t, "asia", "weather_locations", 302)
		onPrimary(t, "asia", "tags", 300)
	})
}
