package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// loadAll begins a unit and tracks every location.
func loadAll(t *testing.T, s *session.Session) (*session.UnitOfWork, map[int64]*weather.Location) {
	t.Helper()
	uow := s.Begin()
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	byID := map[int64]*weather.Location{}
	for _, l := range locs {
		byID[l.ID] = l
	}
	return uow, byID
}

// Statement-form DELETE and UPDATE in a unit synchronize its identity map
// as SQLAlchemy's synchronize_session does: evaluate sends nothing more
// than the statement; fetch adds RETURNING to it, no extra statement.
func TestUnitBulkDeleteSynchronize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 0, 50))
	uow, locs := loadAll(t, s)
	defer uow.Rollback(ctx)

	// evaluate: 2 and 6 are in Asia.
	f.reset()
	res, err := uow.NewDelete().Model((*weather.Location)(nil)).WhereShardKey("continent", "Asia").
		Where("city <> ?", "nowhere").Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx)
	if err != nil || res.RowsAffected != 2 {
		t.Fatalf("evaluate DELETE = %+v, %v; want 2 rows", res, err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) { // the select began the transactions
		t.Errorf("evaluate DELETE ran %v statements; want the DELETE on asia alone", c)
	}
	if c := f.statementsLike("DELETE"); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("DELETEs = %v; want one on asia", c)
	}
	var got *weather.Location
	if err := uow.Get(ctx, &got, 2); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get(2) after an evaluated bulk DELETE = %v, %v; want sql.ErrNoRows", got, err)
	}
	if _, err := uow.IdentityKey(locs[6]); !errors.Is(err, session.ErrNotTracked) {
		t.Errorf("IdentityKey of a bulk-deleted object = %v; want ErrNotTracked", err)
	}

	// fetch: 3 and 7 are in Europe; the keys come back by RETURNING.
	f.reset()
	res, err = uow.NewDelete().Model((*weather.Location)(nil)).Where("id IN (?)", bun.List([]int64{3, 7})).
		Options(session.Synchronize(session.SyncFetch)).Exec(ctx)
	if err != nil || res.RowsAffected != 2 {
		t.Fatalf("fetch DELETE = %+v, %v; want 2 rows", res, err)
	}
	if c := f.statementsLike("DELETE"); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("fetch DELETEs = %v; want one per shard (the criterion is not a shard key)", c)
	}
	if c := f.statementsLike("SELECT"); !slices.Equal(c, zero4) {
		t.Errorf("fetch ran SELECTs %v; want none", c)
	}
	for _, q := range f.sqlOn("europe", "DELETE") {
		if !strings.Contains(q, "RETURNING") {
			t.Errorf("fetch DELETE on europe = %s; want RETURNING", q)
		}
	}
	if err := uow.Get(ctx, &got, 7); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get(7) after a fetched bulk DELETE = %v; want sql.ErrNoRows", err)
	}

	// none: the deleted row's object stays in the map.
	f.reset()
	if _, err := uow.NewDelete().Model((*weather.Location)(nil)).WhereShardKey("continent", "South America").
		Options(session.Synchronize(session.SyncNone)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := uow.Get(ctx, &got, 4); err != nil || got != locs[4] {
		t.Errorf("Get(4) after an unsynchronized DELETE = %p, %v; want the stale tracked object %p", got, err, locs[4])
	}

	// evaluate refuses what it cannot evaluate exactly, sending nothing.
	f.reset()
	_, err = uow.NewDelete().Model((*weather.Location)(nil)).Where("city LIKE ?", "C%").
		Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx)
	if !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("evaluate of LIKE = %v; want ErrUnsupported", err)
	}
	wantIn(t, err, "city LIKE ?", "SyncFetch")
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused evaluate sent %v statements; want none", c)
	}
}

func TestUnitBulkUpdateSynchronize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 0, 51))
	uow, locs := loadAll(t, s)
	defer uow.Rollback(ctx)

	// evaluate: 1 and 5 are in North America.
	f.reset()
	if _, err := uow.NewUpdate().Model((*weather.Location)(nil)).Set("city = ?", "Evaluated").
		WhereShardKey("continent", "North America").Where("id >= ?", 5).
		Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 0, 0, 0}) {
		t.Errorf("evaluate UPDATE ran %v statements; want the UPDATE on north_america alone", c)
	}
	if locs[5].City != "Evaluated" || locs[1].City == "Evaluated" {
		t.Errorf("cities after evaluate: 5 %q, 1 %q; want 5 Evaluated, 1 unchanged", locs[5].City, locs[1].City)
	}

	// fetch (auto, since SET upper(city) cannot be evaluated): the
	// returned rows load into the tracked objects.
	f.reset()
	if _, err := uow.NewUpdate().Model((*weather.Location)(nil)).Set("city = upper(city)").
		WhereShardKey("continent", "Asia").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.statementsLike("UPDATE"); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("auto UPDATEs = %v; want one on asia", c)
	}
	if q := f.sqlOn("asia", "UPDATE"); len(q) != 1 || !strings.Contains(q[0], "RETURNING") {
		t.Errorf("auto UPDATE on asia = %v; want RETURNING (fetch)", q)
	}
	if c := f.statementsLike("SELECT"); !slices.Equal(c, zero4) {
		t.Errorf("fetch ran SELECTs %v; want none", c)
	}
	for _, id := range []int64{2, 6} {
		if want := strings.ToUpper(f.cityOn(t, "asia", id)); locs[id].City != want || !strings.HasPrefix(want, "CITY") {
			t.Errorf("city of %d after fetch = %q; want %q", id, locs[id].City, want)
		}
	}

	// No unflushed change remains: the snapshot took the new values.
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("flush after synchronized updates ran %v statements; want none", c)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.cityOn(t, "north_america", 5); c != "Evaluated" {
		t.Errorf("city of 5 = %q; want Evaluated", c)
	}
}
