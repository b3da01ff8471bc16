package session_test

import (
	"context"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestUnitPartialSelectIsNotTracked guards the policy for selects that do
// not load every column (Column, ColumnExpr, ExcludeColumn): their objects
// are returned but not tracked, so a later Get or full select reads
// complete rows from the database instead of handing out the incomplete
// object (which, before, came back from Get with an empty City and no SQL,
// and from every later full select).
func TestUnitPartialSelectIsNotTracked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(8, 0, 5)
	f.seed(t, s, d)
	want := map[int64]string{}
	for _, l := range d.Locations {
		want[l.ID] = l.City
	}
	partial := map[string]func(q *session.SelectQuery) *session.SelectQuery{
		"Column":        func(q *session.SelectQuery) *session.SelectQuery { return q.Column("id") },
		"ExcludeColumn": func(q *session.SelectQuery) *session.SelectQuery { return q.ExcludeColumn("city") },
		"ColumnExpr":    func(q *session.SelectQuery) *session.SelectQuery { return q.ColumnExpr("id, continent") },
	}
	for name, narrow := range partial {
		t.Run(name, func(t *testing.T) {
			uow := s.Begin()
			defer uow.Rollback(ctx)
			var locs []*weather.Location
			if err := narrow(uow.NewSelect().Model(&locs).Order("id")).Scan(ctx); err != nil {
				t.Fatalf("partial select = %v", err)
			}
			if len(locs) != 8 || locs[0].ID != 1 || locs[0].City != "" {
				t.Fatalf("partial select = %d rows, first %+v; want 8 rows with no City", len(locs), locs[0])
			}
			f.reset()
			var loc *weather.Location
			if err := uow.Get(ctx, &loc, 1); err != nil {
				t.Fatalf("Get(1) after a partial select = %v", err)
			}
			if loc.City != want[1] {
				t.Errorf("Get(1) after a partial select: City = %q; want %q", loc.City, want[1])
			}
			if loc == locs[0] {
				t.Errorf("Get(1) handed out the partial object")
			}
			if c := f.statementsLike("SELECT"); slices.Equal(c, zero4) {
				t.Errorf("Get(1) after a partial select sent no SELECT; want the row read from its shard")
			}
			// A full select returns complete objects, the one Get tracked
			// among them.
			var full []*weather.Location
			if err := uow.NewSelect().Model(&full).Order("id").Scan(ctx); err != nil {
				t.Fatalf("full select = %v", err)
			}
			if len(full) != 8 {
				t.Fatalf("full select = %d rows; want 8", len(full))
			}
			for _, l := range full {
				if l.City != want[l.ID] {
					t.Errorf("full select after a partial one: location %d City = %q; want %q", l.ID, l.City, want[l.ID])
				}
			}
			if full[0] != loc {
				t.Errorf("full select row 1 = %p; want the tracked object %p", full[0], loc)
			}
			// Now every row is tracked: a partial select returns the tracked
			// (complete) objects, and changes no snapshot.
			var again []*weather.Location
			if err := narrow(uow.NewSelect().Model(&again).Order("id")).Scan(ctx); err != nil {
				t.Fatalf("second partial select = %v", err)
			}
			if len(again) != 8 || again[0] != loc || again[0].City != want[1] {
				t.Fatalf("partial select of tracked rows = %d rows, first %p %q; want the tracked object %p", len(again), again[0], again[0].City, loc)
			}
			f.reset()
			if err := uow.Flush(ctx); err != nil {
				t.Fatalf("Flush = %v", err)
			}
			if c := f.statementsLike("UPDATE"); !slices.Equal(c, zero4) {
				t.Errorf("Flush after selects that changed nothing sent UPDATEs %v; want none", c)
			}
		})
	}
}

// TestUnitPartialSelectWithoutKey selects no primary key: every row has a
// zero key, which must not be taken for the tracked object whose key is
// zero (nor make the rows one object, as tracking them did).
func TestUnitPartialSelectWithoutKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(4, 0, 5)
	d.Locations = append(d.Locations, &weather.Location{ID: 0, Continent: "Asia", City: "Zero"})
	f.seed(t, s, d)
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var zero *weather.Location
	if err := uow.Get(ctx, &zero, 0); err != nil {
		t.Fatalf("Get(0) = %v", err)
	}
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Column("city").Scan(ctx); err != nil {
		t.Fatalf("select of city alone = %v", err)
	}
	var cities []string
	for _, l := range locs {
		if l == zero && l.City != "Zero" {
			t.Errorf("row %q came back as the tracked location 0", l.City)
		}
		cities = append(cities, l.City)
	}
	slices.Sort(cities)
	want := []string{"City 0001", "City 0002", "City 0003", "City 0004", "Zero"}
	if !slices.Equal(cities, want) {
		t.Errorf("select of city alone = %q; want %q", cities, want)
	}
}

// TestUnitPartialRelationIsNotTracked narrows a relation's columns in its
// apply function: the related objects may lack columns, so they are not
// tracked, and a later Get reads the full row. A relation applied with a
// condition only loads complete objects, which are tracked.
func TestUnitPartialRelationIsNotTracked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(4, 2, 5)
	f.seed(t, s, d)
	first := d.Reports[0] // report 1, of location 1

	uow := s.Begin()
	defer uow.Rollback(ctx)
	var locs []*weather.Location
	err := uow.NewSelect().Model(&locs).Relation("Reports", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Column("id", "location_id")
	}).Order("id").Scan(ctx)
	if err != nil {
		t.Fatalf("select with narrowed Reports = %v", err)
	}
	if len(locs) != 4 || len(locs[0].Reports) != 2 || locs[0].Reports[0].Temperature != 0 {
		t.Fatalf("select with narrowed Reports = %d rows, first with %d reports; want 4 rows, 2 reports without Temperature",
			len(locs), len(locs[0].Reports))
	}
	f.reset()
	var rep *weather.Report
	if err := uow.Get(ctx, &rep, first.ID); err != nil {
		t.Fatalf("Get(report %d) = %v", first.ID, err)
	}
	if rep.Temperature != first.Temperature || rep == locs[0].Reports[0] {
		t.Errorf("Get(report %d) after a narrowed relation = %p with Temperature %v; want a new object with %v",
			first.ID, rep, rep.Temperature, first.Temperature)
	}
	if c := f.statementsLike("SELECT"); slices.Equal(c, zero4) {
		t.Errorf("Get after a narrowed relation sent no SELECT")
	}

	// A condition alone loads complete reports: tracked, so Get sends nothing.
	u2 := s.Begin()
	defer u2.Rollback(ctx)
	var all []*weather.Location
	err = u2.NewSelect().Model(&all).Relation("Reports", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("temperature > ?", -1000)
	}).Order("id").Scan(ctx)
	if err != nil || len(all) != 4 || len(all[0].Reports) != 2 {
		t.Fatalf("select with filtered Reports = %d rows, %v", len(all), err)
	}
	f.reset()
	var rep2 *weather.Report
	if err := u2.Get(ctx, &rep2, first.ID); err != nil {
		t.Fatalf("Get(report %d) = %v", first.ID, err)
	}
	if rep2 != all[0].Reports[0] {
		t.Errorf("Get(report %d) = %p; want the tracked %p", first.ID, rep2, all[0].Reports[0])
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("Get of a tracked report ran %v statements; want none", c)
	}
}
