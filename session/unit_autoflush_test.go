package session_test

import (
	"context"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// Statements a unit runs see its pending objects: they are flushed first
// (autoflush), on their own shards, inside the unit's transactions.
func TestUnitAutoflushBeforeStatements(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 40))
	uow := s.Begin()
	defer uow.Rollback(ctx)

	added := &weather.Location{ID: 900, Continent: "Asia", City: "Kobe"}
	if err := uow.Add(added); err != nil {
		t.Fatal(err)
	}
	f.reset()
	var asia []*weather.Location
	if err := uow.NewSelect().Model(&asia).Where("continent = ?", "Asia").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(asia) != 2 || asia[1] != added {
		t.Fatalf("select after Add = %v; want location 2 and the added object %p", asia, added)
	}
	if c := f.statementsLike("INSERT"); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("autoflush INSERTs = %v; want one on asia", c)
	}

	// A change to a tracked object is seen by a Count and by a Get miss.
	asia[0].City = "Renamed"
	n, err := uow.NewSelect().Model((*weather.Location)(nil)).Where("city = ?", "Renamed").Count(ctx)
	if err != nil || n != 1 {
		t.Errorf("Count after a change = %d, %v; want 1", n, err)
	}
	fresh := &weather.Location{ID: 901, Continent: "Europe", City: "Graz"}
	if err := uow.Add(fresh); err != nil {
		t.Fatal(err)
	}
	var got *weather.Location
	if err := uow.Get(ctx, &got, 901); err != nil || got != fresh {
		t.Errorf("Get of a pending object = %p, %v; want it, %p", got, err, fresh)
	}

	// NoAutoflush: the statements in it do not see the pending object.
	later := &weather.Location{ID: 902, Continent: "Europe", City: "Linz"}
	if err := uow.Add(later); err != nil {
		t.Fatal(err)
	}
	err = uow.NoAutoflush(func() error {
		n, err := uow.NewSelect().Model((*weather.Location)(nil)).Where("id = ?", 902).Count(ctx)
		if err == nil && n != 0 {
			t.Errorf("Count under NoAutoflush = %d; want 0 (not flushed)", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := uow.NewSelect().Model((*weather.Location)(nil)).Where("id = ?", 902).Count(ctx); err != nil || n != 1 {
		t.Errorf("Count after NoAutoflush = %d, %v; want 1", n, err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.cityOn(t, "asia", 2); c != "Renamed" {
		t.Errorf("city of 2 = %q; want Renamed", c)
	}
}

// Autoflush(false) flushes only at Flush and Commit.
func TestUnitAutoflushOff(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 41))
	uow := s.Begin(session.Autoflush(false))
	defer uow.Rollback(ctx)
	if err := uow.Add(&weather.Location{ID: 910, Continent: "Asia", City: "Sendai"}); err != nil {
		t.Fatal(err)
	}
	f.reset()
	var asia []*weather.Location
	if err := uow.NewSelect().Model(&asia).Where("continent = ?", "Asia").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(asia) != 1 {
		t.Errorf("select under Autoflush(false) = %d rows; want 1 (the pending object unflushed)", len(asia))
	}
	if c := f.statementsLike("INSERT"); !slices.Equal(c, zero4) {
		t.Errorf("INSERTs under Autoflush(false) = %v; want none", c)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.rowsOn(t, "asia", "weather_locations"), 910) {
		t.Error("location 910 not committed")
	}
}
