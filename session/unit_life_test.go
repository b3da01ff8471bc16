package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// cityOn reads a location's city straight from one shard, outside any unit.
func (f *fixture) cityOn(t *testing.T, id session.ShardID, loc int64) string {
	t.Helper()
	var city string
	err := f.shards[id].NewSelect().Table("weather_locations").Column("city").Where("id = ?", loc).Scan(context.Background(), &city)
	if err != nil {
		t.Fatalf("read city of %d on %s: %v", loc, id, err)
	}
	return city
}

// setCity changes a location's city straight on one shard, as another
// process would.
func (f *fixture) setCity(t *testing.T, id session.ShardID, loc int64, city string) {
	t.Helper()
	if _, err := f.shards[id].NewUpdate().Table("weather_locations").Set("city = ?", city).Where("id = ?", loc).Exec(context.Background()); err != nil {
		t.Fatalf("set city of %d on %s: %v", loc, id, err)
	}
}

// A unit survives Commit: the next statement begins new transactions, the
// identity map is kept, and its objects are expired, so a Get hit reloads
// the row (one SELECT on its shard) and sees what others committed since.
func TestUnitLivesAfterCommitAndExpires(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 30))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var loc *weather.Location
	if err := uow.Get(ctx, &loc, 3); err != nil { // europe
		t.Fatal(err)
	}
	added := &weather.Location{ID: 500, Continent: "Asia", City: "Nara"}
	if err := uow.Add(added); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if n := s.OpenUnits(); n != 0 {
		t.Errorf("OpenUnits after Commit = %d; want 0", n)
	}
	if !slices.Contains(f.rowsOn(t, "asia", "weather_locations"), 500) {
		t.Fatal("location 500 not committed on asia")
	}
	f.setCity(t, "europe", 3, "Changed Elsewhere")

	f.reset()
	var again *weather.Location
	if err := uow.Get(ctx, &again, 3); err != nil {
		t.Fatalf("Get after Commit = %v", err)
	}
	if again != loc {
		t.Errorf("Get after Commit = %p; want the tracked object %p (the identity map is kept)", again, loc)
	}
	if c := f.statementsLike("SELECT"); !slices.Equal(c, []int{0, 0, 1, 0}) || loc.City != "Changed Elsewhere" {
		t.Errorf("Get of an expired object ran SELECTs %v, city %q; want one on europe and the committed city", c, loc.City)
	}
	f.reset()
	if err := uow.Get(ctx, &again, 3); err != nil || again != loc {
		t.Fatalf("second Get = %p, %v", again, err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("Get of a reloaded object ran %v statements; want none", c)
	}
	var nara *weather.Location
	if err := uow.Get(ctx, &nara, 500); err != nil || nara != added {
		t.Errorf("Get(500) after Commit = %p, %v; want the added object %p", nara, err, added)
	}

	// The unit writes again, in a new transaction.
	loc.City = "Second Commit"
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("second Commit = %v", err)
	}
	if c := f.cityOn(t, "europe", 3); c != "Second Commit" {
		t.Errorf("city on europe after the second Commit = %q; want Second Commit", c)
	}
}

// A change made to an expired object before its reload is kept by the
// reload and flushed, as SQLAlchemy keeps an attribute set on an expired
// instance; ExpireOnCommit(false) keeps objects as they were, no reload.
func TestUnitExpiredObjectKeepsLaterChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 31))

	uow := s.Begin()
	defer uow.Rollback(ctx)
	var loc *weather.Location
	if err := uow.Get(ctx, &loc, 2); err != nil { // asia
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.setCity(t, "asia", 2, "Theirs")
	loc.Continent = "Asia" // unchanged value: not a change
	loc.City = "Mine"
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Where("id = ?", 2).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(locs) != 1 || locs[0] != loc || loc.City != "Mine" {
		t.Fatalf("select of the expired object = %v, city %q; want the tracked object, city Mine", locs, loc.City)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.cityOn(t, "asia", 2); c != "Mine" {
		t.Errorf("city on asia = %q; want Mine (the change made after expiry is flushed)", c)
	}

	keep := s.Begin(session.ExpireOnCommit(false))
	defer keep.Rollback(ctx)
	var kept *weather.Location
	if err := keep.Get(ctx, &kept, 2); err != nil {
		t.Fatal(err)
	}
	if err := keep.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.setCity(t, "asia", 2, "Later")
	f.reset()
	var same *weather.Location
	if err := keep.Get(ctx, &same, 2); err != nil || same != kept {
		t.Fatalf("Get = %p, %v; want %p", same, err, kept)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) || kept.City != "Mine" {
		t.Errorf("Get under ExpireOnCommit(false) ran %v statements, city %q; want none and Mine", c, kept.City)
	}
	// A Rollback with nothing begun since the Commit (a deferred one)
	// leaves the map as it was.
	if err := keep.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := keep.Get(ctx, &same, 2); err != nil || same != kept {
		t.Fatalf("Get after an empty Rollback = %p, %v; want %p", same, err, kept)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("Get after an empty Rollback ran %v statements; want none", c)
	}
}

// Rollback leaves the unit usable: objects added or on shards the
// transaction wrote on are expunged; others are expired, their unflushed
// changes discarded on reload.
func TestUnitLivesAfterRollback(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 32))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var tokyo, paris *weather.Location
	if err := uow.Get(ctx, &tokyo, 2); err != nil { // asia
		t.Fatal(err)
	}
	if err := uow.Get(ctx, &paris, 3); err != nil { // europe
		t.Fatal(err)
	}
	city := tokyo.City
	tokyo.City = "unflushed"
	added := &weather.Location{ID: 600, Continent: "Europe", City: "Bern"}
	if err := uow.Add(added); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil { // writes europe only: tokyo's change is flushed too
		t.Fatal(err)
	}
	if err := uow.Rollback(ctx); err != nil {
		t.Fatalf("Rollback = %v", err)
	}
	if c := f.cityOn(t, "asia", 2); c != city {
		t.Errorf("city on asia after Rollback = %q; want %q", c, city)
	}
	var got *weather.Location
	if err := uow.Get(ctx, &got, 3); err != nil || got == paris {
		t.Errorf("Get(3) after Rollback = %p, %v; want a fresh object (europe was written)", got, err)
	}
	// tokyo was updated by the flush: asia was written, so it is expunged.
	if err := uow.Get(ctx, &got, 2); err != nil || got == tokyo || got.City != city {
		t.Errorf("Get(2) after Rollback = %p (city %q), %v; want a fresh object with %q", got, got.City, err, city)
	}
	if err := uow.Add(added); err != nil {
		t.Fatalf("Add of the rolled-back object = %v", err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit after Rollback = %v", err)
	}
	if !slices.Contains(f.rowsOn(t, "europe", "weather_locations"), 600) {
		t.Error("location 600 not committed after Rollback and a new Add")
	}

	// A read-only transaction rolled back: its objects are expired and
	// their unflushed changes discarded by the reload.
	var na *weather.Location
	if err := uow.Get(ctx, &na, 1); err != nil {
		t.Fatal(err)
	}
	want := na.City
	na.City = "discarded"
	if err := uow.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := uow.Get(ctx, &got, 1); err != nil || got != na || na.City != want {
		t.Errorf("Get(1) after a read-only Rollback = %p (city %q), %v; want %p reloaded with %q", got, na.City, err, na, want)
	}
	if c := f.statementsLike("SELECT"); !slices.Equal(c, []int{1, 0, 0, 0}) {
		t.Errorf("reload ran SELECTs %v; want one on north_america", c)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.cityOn(t, "north_america", 1); c != want {
		t.Errorf("city on north_america = %q; want %q (the discarded change was written)", c, want)
	}
}

// A flush that fails on a shard rolls every shard back, and the unit then
// refuses work until Rollback: a Commit after it cannot commit the writes
// of the flushes that came after the lost ones.
func TestUnitFailedFlushNeedsRollback(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 33))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	if err := uow.Add(&weather.Location{ID: 700, Continent: "Asia", City: "First"}); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dup := &weather.Location{ID: 3, Continent: "Europe", City: "Duplicate"} // id 3 is on europe already
	if err := uow.Add(dup); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err == nil {
		t.Fatal("Flush of a duplicate key succeeded")
	}
	later := &weather.Location{ID: 701, Continent: "Asia", City: "Later"}
	if err := uow.Add(later); !errors.Is(err, session.ErrRollbackPending) {
		t.Errorf("Add after a failed flush = %v; want ErrRollbackPending", err)
	}
	var loc *weather.Location
	if err := uow.Get(ctx, &loc, 1); !errors.Is(err, session.ErrRollbackPending) {
		t.Errorf("Get after a failed flush = %v; want ErrRollbackPending", err)
	}
	if _, err := uow.NewSelect().Model((*weather.Location)(nil)).Count(ctx); !errors.Is(err, session.ErrRollbackPending) {
		t.Errorf("a select after a failed flush = %v; want ErrRollbackPending", err)
	}
	if err := uow.Commit(ctx); !errors.Is(err, session.ErrRollbackPending) {
		t.Errorf("Commit after a failed flush = %v; want ErrRollbackPending", err)
	}
	if slices.Contains(f.rowsOn(t, "asia", "weather_locations"), 700) {
		t.Error("location 700, flushed before the failure, was committed")
	}
	if err := uow.Rollback(ctx); err != nil {
		t.Fatalf("Rollback = %v", err)
	}
	if err := uow.Add(later); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit after Rollback = %v", err)
	}
	if got := f.rowsOn(t, "asia", "weather_locations"); !slices.Contains(got, 701) || slices.Contains(got, 700) {
		t.Errorf("asia holds %v; want 701 and not 700", got)
	}
}

// ExpireAll discards unflushed changes and reloads on the next hit;
// ExpungeAll forgets every object; IdentityKey gives (type, pk, shard).
func TestUnitExpireAllExpungeAllIdentityKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 34))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var loc *weather.Location
	if err := uow.Get(ctx, &loc, 4); err != nil { // south_america
		t.Fatal(err)
	}
	k, err := uow.IdentityKey(loc)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type().Name() != "Location" || k.Shard() != "south_america" || k.PK() != int64(4) {
		t.Errorf("IdentityKey = %v (pk %#v); want Location(4)@south_america", k, k.PK())
	}
	if sk, err := s.IdentityKey(loc); err != nil || sk != k {
		t.Errorf("Session.IdentityKey = %v, %v; want %v", sk, err, k)
	}
	pending := &weather.Location{ID: 800, Continent: "Asia", City: "New"}
	if err := uow.Add(pending); err != nil {
		t.Fatal(err)
	}
	if _, err := uow.IdentityKey(pending); !errors.Is(err, session.ErrNotTracked) {
		t.Errorf("IdentityKey of a pending object = %v; want ErrNotTracked", err)
	}
	if _, err := s.IdentityKey(pending); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Session.IdentityKey of an unplaced object = %v; want ErrInvalidArgument", err)
	}
	if err := uow.Expunge(pending); err != nil {
		t.Fatal(err)
	}

	city := loc.City
	loc.City = "discarded by ExpireAll"
	if err := uow.ExpireAll(); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("flush after ExpireAll ran %v statements; want none (the change was discarded)", c)
	}
	var got *weather.Location
	if err := uow.Get(ctx, &got, 4); err != nil || got != loc || loc.City != city {
		t.Errorf("Get after ExpireAll = %p (city %q), %v; want %p reloaded with %q", got, loc.City, err, loc, city)
	}
	if c := f.statementsLike("SELECT"); !slices.Equal(c, []int{0, 0, 0, 1}) {
		t.Errorf("Get after ExpireAll ran SELECTs %v; want one on south_america", c)
	}
	// A row deleted elsewhere: the reload finds it gone.
	if err := uow.ExpireAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.shards["south_america"].NewDelete().Table("weather_locations").Where("id = 4").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := uow.Get(ctx, &got, 4); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get of an expired object whose row is gone = %v; want sql.ErrNoRows", err)
	}

	var one *weather.Location
	if err := uow.Get(ctx, &one, 1); err != nil {
		t.Fatal(err)
	}
	if err := uow.ExpungeAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := uow.IdentityKey(one); !errors.Is(err, session.ErrNotTracked) {
		t.Errorf("IdentityKey after ExpungeAll = %v; want ErrNotTracked", err)
	}
	if err := uow.Get(ctx, &got, 1); err != nil || got == one {
		t.Errorf("Get after ExpungeAll = %p, %v; want a fresh object, not %p", got, err, one)
	}
}
