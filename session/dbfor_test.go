package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// Repository code written against bun.IDB, knowing nothing of shards.
func renameCity(ctx context.Context, db bun.IDB, loc *weather.Location, city string) error {
	loc.City = city
	_, err := db.NewUpdate().Model(loc).Column("city").WherePK().Exec(ctx)
	return err
}

func countCities(ctx context.Context, db bun.IDB, continent string) (int64, error) {
	return db.NewSelect().Model((*weather.Location)(nil)).Where("continent = ?", continent).Count(ctx)
}

// TestDBFor guards issue 11 item 2's transaction helper: DBFor and
// DBForKey give the one shard's handle an object or a key routes to (in a
// unit, that shard's transaction), so bun.IDB code runs there and nowhere
// else; several shards are ErrAmbiguous.
func TestDBFor(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 0, 4))

	var loc weather.Location
	if err := s.Get(ctx, &loc, 3); err != nil { // on europe
		t.Fatal(err)
	}
	f.reset()
	db, err := s.DBFor(ctx, &loc)
	if err != nil {
		t.Fatal(err)
	}
	if err := renameCity(ctx, db, &loc, "Renamed"); err != nil {
		t.Fatal(err)
	}
	if got := f.perShard(); !slices.Equal(got, []int{0, 0, 1, 0}) {
		t.Errorf("repository update through DBFor ran %v statements per shard; want one on europe", got)
	}
	if c := cities(t, f)["europe"][3]; c != "Renamed" {
		t.Errorf("location 3 on europe = %q; want Renamed", c)
	}

	// A new object goes where the ShardChooser places it.
	db, err = s.DBFor(ctx, &weather.Location{ID: 100, Continent: "Asia"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewInsert().Model(&weather.Location{ID: 100, Continent: "Asia", City: "New"}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := cities(t, f)["asia"][100]; !ok {
		t.Error("location 100 is not on asia")
	}

	// A key: the ExecuteChooser's one shard.
	f.reset()
	db, err = s.DBForKey(ctx, (*weather.Location)(nil), "continent", "South America")
	if err != nil {
		t.Fatal(err)
	}
	n, err := countCities(ctx, db, "South America")
	if err != nil || n != 2 {
		t.Errorf("count through DBForKey = %d, %v; want 2", n, err)
	}
	if got := f.perShard(); !slices.Equal(got, []int{0, 0, 0, 1}) {
		t.Errorf("DBForKey(South America) ran %v statements per shard; want one on south_america", got)
	}
	_, err = s.DBForKey(ctx, (*weather.Report)(nil), "location_id", 3)
	if !errors.Is(err, session.ErrAmbiguous) {
		t.Errorf("DBForKey on a column the chooser does not route by = %v; want ErrAmbiguous", err)
	}
	wantIn(t, err, "Report", "location_id", "4 shards")
	_, err = s.DBFor(ctx, &loc, session.SetShardID("asia"))
	if !errors.Is(err, session.ErrPinConflict) {
		t.Errorf("DBFor of a europe object pinned to asia = %v; want ErrPinConflict", err)
	}

	// A pinned key the ExecuteChooser routes to another shard is refused as
	// a pinned object is: the handle would write Europe's rows on asia.
	f.reset()
	for name, try := range map[string]func() error{
		"SetShardID": func() error {
			_, err := s.DBForKey(ctx, (*weather.Location)(nil), "continent", "Europe", session.SetShardID("asia"))
			return err
		},
		"Using": func() error {
			_, err := s.Using("asia").DBForKey(ctx, (*weather.Location)(nil), "continent", "Europe")
			return err
		},
		"WithShardID": func() error {
			_, err := s.DBForKey(session.WithShardID(ctx, "asia"), (*weather.Location)(nil), "continent", "Europe")
			return err
		},
		"unit under WithShardID": func() error {
			return s.RunInTx(session.WithShardID(ctx, "asia"), nil, func(ctx context.Context, u *session.UnitOfWork) error {
				_, err := u.DBForKey(ctx, (*weather.Location)(nil), "continent", "Europe")
				return err
			})
		},
	} {
		err := try()
		if !errors.Is(err, session.ErrPinConflict) {
			t.Errorf("DBForKey(continent Europe) pinned to asia by %s = %v; want ErrPinConflict", name, err)
		}
		wantIn(t, err, "Location", "continent", "Europe", "asia", "europe")
	}
	if got := f.perShard(); !slices.Equal(got, []int{0, 0, 0, 0}) {
		t.Errorf("refused DBForKey calls ran %v statements per shard; want none", got)
	}
	// PinWins takes the pin; a pin on the key's own shard is that shard.
	if db, err := s.DBForKey(ctx, (*weather.Location)(nil), "continent", "Europe", session.SetShardID("asia"), session.PinWins()); err != nil {
		t.Errorf("DBForKey pinned to asia with PinWins = %v; want asia's handle", err)
	} else if asia, _ := s.DB("asia"); db != asia {
		t.Errorf("DBForKey pinned to asia with PinWins = %v; want asia's handle", db)
	}
	if db, err := s.DBForKey(session.WithShardID(ctx, "europe"), (*weather.Location)(nil), "continent", "Europe"); err != nil {
		t.Errorf("DBForKey(Europe) pinned to europe = %v; want europe's handle", err)
	} else if europe, _ := s.DB("europe"); db != europe {
		t.Errorf("DBForKey(Europe) pinned to europe = %v; want europe's handle", db)
	}

	// In a unit: the shard's transaction, rolled back or committed with it.
	boom := errors.New("boom")
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		db, err := u.DBFor(ctx, &loc)
		if err != nil {
			return err
		}
		if err := renameCity(ctx, db, &loc, "Undone"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if c := cities(t, f)["europe"][3]; c != "Renamed" {
		t.Errorf("location 3 = %q after the unit rolled back; want Renamed", c)
	}
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		db, err := u.DBForKey(ctx, (*weather.Location)(nil), "continent", "Europe")
		if err != nil {
			return err
		}
		return renameCity(ctx, db, &loc, "Committed")
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := cities(t, f)["europe"][3]; c != "Committed" {
		t.Errorf("location 3 = %q after the unit committed; want Committed", c)
	}
	u := s.Using("asia").Begin()
	defer u.Rollback(ctx)
	if _, err := u.DBFor(ctx, &loc); !errors.Is(err, session.ErrInvalidArgument) && !errors.Is(err, session.ErrPinConflict) {
		t.Errorf("DBFor of a europe object in an asia unit = %v; want a refusal", err)
	}
}

// TestGetWith guards issue 11 item 2: a Get takes statement options. Under
// WithScatterGuard a Get the IdentityChooser sends to every shard was
// refused with advice (AllowScatter) it had no way to take; GetWith takes
// it, and SetShardID pins the probe.
func TestGetWith(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t, session.WithScatterGuard())
	f.seed(t, s, weather.Generate(8, 0, 4))
	var loc weather.Location
	err := s.Get(ctx, &loc, 3)
	if !errors.Is(err, session.ErrScatter) {
		t.Fatalf("Get under the guard = %v; want ErrScatter", err)
	}
	wantIn(t, err, "GetWith", "AllowScatter()")
	if err := s.GetWith(ctx, []session.StatementOption{session.AllowScatter()}, &loc, 3); err != nil || loc.City == "" {
		t.Fatalf("GetWith(AllowScatter) = %v (%+v)", err, loc)
	}
	if id, _ := loc.Shard(); id != "europe" {
		t.Errorf("location 3 came from %q; want europe", id)
	}
	f.reset()
	var other weather.Location
	err = s.GetWith(ctx, []session.StatementOption{session.SetShardID("asia")}, &other, 3)
	if !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("GetWith pinned to asia of a europe key = %v; want sql.ErrNoRows", err)
	}
	if got := f.perShard(); !slices.Equal(got, []int{0, 1, 0, 0}) {
		t.Errorf("pinned GetWith ran %v statements per shard; want one on asia", got)
	}
	err = s.GetWith(ctx, []session.StatementOption{session.AllowPartial(), session.AllowScatter()}, &other, 3)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("GetWith(AllowPartial) = %v; want ErrInvalidArgument", err)
	}
	// Re-reading an object from its own shard needs no option.
	if err := s.Get(ctx, &loc); err != nil {
		t.Errorf("Get of a loaded object under the guard = %v", err)
	}
	// A unit's GetWith.
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		var p *weather.Location
		if err := u.Get(ctx, &p, 5); !errors.Is(err, session.ErrScatter) {
			t.Errorf("unit Get under the guard = %v; want ErrScatter", err)
		}
		if err := u.GetWith(ctx, []session.StatementOption{session.AllowScatter()}, &p, 5); err != nil || p.ID != 5 {
			t.Errorf("unit GetWith(AllowScatter) = %v, %+v", err, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
