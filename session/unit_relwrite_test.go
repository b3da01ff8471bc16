package session_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// Adding to, removing from and clearing the many-to-many field of a
// stored object writes its join rows on the object's shard, as
// SQLAlchemy's collections do; a new object appended is inserted there
// too. (Before, a flush refused any change to a stored object's
// many-to-many field.)
func TestUnitManyToManyAddRemoveClear(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	seed := s.Begin()
	if err := seed.Add(&weather.Location{ID: 2, Continent: "Asia", City: "Tokyo",
		Tags: []weather.Tag{{ID: 10, Name: "sunny"}, {ID: 11, Name: "windy"}}}); err != nil {
		t.Fatal(err)
	}
	if err := seed.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	humid := &weather.Tag{ID: 12, Name: "humid"} // stored on asia, unlinked
	if err := s.Insert(session.WithShardID(ctx, "asia"), humid); err != nil {
		t.Fatal(err)
	}

	uow := s.Begin()
	defer uow.Rollback(ctx)
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Relation("Tags").Where("id = ?", 2).Scan(ctx); err != nil || len(locs) != 1 {
		t.Fatalf("load = %d rows, %v", len(locs), err)
	}
	tokyo := locs[0]
	// remove windy, add the stored humid and a new rainy
	tokyo.Tags = []weather.Tag{tokyo.Tags[0], *humid, {ID: 13, Name: "rainy"}}
	f.reset()
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if got := f.linksOn(t, "asia"); !slices.Equal(got, []string{"2-10", "2-12", "2-13"}) {
		t.Errorf("links on asia = %v; want [2-10 2-12 2-13]", got)
	}
	if got := f.rowsOn(t, "asia", "tags"); !slices.Equal(got, []int64{10, 11, 12, 13}) {
		t.Errorf("tags on asia = %v; want 10-13 (rainy inserted with its location)", got)
	}
	if c := f.statementsLike("INSERT"); !slices.Equal(c, []int{0, 2, 0, 0}) { // the new tag, the join rows
		t.Errorf("INSERTs = %v; want two on asia", c)
	}
	if c := f.statementsLike("DELETE"); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("DELETEs = %v; want one on asia", c)
	}
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("second Flush ran %v statements; want none", c)
	}

	tokyo.Tags = nil // clear
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if got := f.linksOn(t, "asia"); len(got) != 0 {
		t.Errorf("links on asia after clear = %v; want none", got)
	}
}

// A child appended to a stored parent's has-many field is placed with the
// parent and gets its key, whatever the ShardChooser would say of it (here
// it has no rule for a report without Location).
func TestUnitHasManyAppendFollowsParent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 60))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var tokyo *weather.Location
	if err := uow.Get(ctx, &tokyo, 2); err != nil {
		t.Fatal(err)
	}
	rep := &weather.Report{ID: 70, Temperature: 21, ReportTime: time.Now()}
	tokyo.Reports = append(tokyo.Reports, rep)
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if sh, _ := rep.Shard(); sh != "asia" || rep.LocationID != 2 || !slices.Contains(f.rowsOn(t, "asia", "weather_reports"), 70) {
		t.Errorf("report on %q with location %d; want asia and 2", sh, rep.LocationID)
	}
}

// A new parent holding a stored has-one child is placed with the child.
func TestUnitNewParentFollowsHasOneChild(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	st := &weather.Station{ID: 5, LocationID: 40, Name: "Bergen"}
	if err := s.Insert(session.WithShardID(ctx, "europe"), st); err != nil {
		t.Fatal(err)
	}
	uow := s.Begin()
	defer uow.Rollback(ctx)
	// The continent says Asia, but the station it holds is on europe.
	loc := &weather.Location{ID: 40, Continent: "Asia", City: "Bergen", Station: st}
	if err := uow.Add(loc); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if sh, _ := loc.Shard(); sh != "europe" || !slices.Contains(f.rowsOn(t, "europe", "weather_locations"), 40) {
		t.Errorf("location placed on %q; want europe, with its station", sh)
	}
}
