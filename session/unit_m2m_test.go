package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// linksOn returns the location_tags rows of one shard as "location-tag".
func (f *fixture) linksOn(t *testing.T, id session.ShardID) []string {
	t.Helper()
	var rows []weather.LocationTag
	if err := f.shards[id].NewSelect().Model(&rows).Order("location_id", "tag_id").Scan(context.Background()); err != nil {
		t.Fatalf("read location_tags on %s: %v", id, err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%d-%d", r.LocationID, r.TagID))
	}
	return out
}

// TestUnitAddWritesManyToMany adds locations whose m2m field Tags holds
// tags: new tags are inserted on their location's shard, and the join rows
// too, one INSERT per table per shard. Before, both were skipped and
// Commit returned nil.
func TestUnitAddWritesManyToMany(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)

	// A tag stored before the unit, on asia: linked, not inserted again.
	stored := &weather.Tag{ID: 30, Name: "humid"}
	if err := s.Insert(session.WithShardID(ctx, "asia"), stored); err != nil {
		t.Fatalf("Insert the stored tag: %v", err)
	}
	f.reset()

	uow := s.Begin()
	defer uow.Rollback(ctx)
	tokyo := &weather.Location{ID: 1, Continent: "Asia", City: "Tokyo",
		Tags: []weather.Tag{{ID: 10, Name: "sunny"}, {ID: 11, Name: "windy"}, *stored}}
	oslo := &weather.Location{ID: 2, Continent: "Europe", City: "Oslo",
		Tags: []weather.Tag{{ID: 20, Name: "cold"}}}
	if err := uow.Add(tokyo, oslo); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	want := map[session.ShardID][2][]string{ // tags, links
		"asia":   {{"10", "11", "30"}, {"1-10", "1-11", "1-30"}},
		"europe": {{"20"}, {"2-20"}},
	}
	for _, id := range weather.Shards {
		var tags []string
		for _, n := range f.rowsOn(t, id, "tags") {
			tags = append(tags, fmt.Sprint(n))
		}
		if w := want[id]; !slices.Equal(tags, w[0]) {
			t.Errorf("tags on %s = %v; want %v", id, tags, w[0])
		}
		if got, w := f.linksOn(t, id), want[id][1]; !slices.Equal(got, w) {
			t.Errorf("location_tags on %s = %v; want %v", id, got, w)
		}
	}
	if got, w := f.statementsLike("INSERT"), []int{0, 3, 3, 0}; !slices.Equal(got, w) {
		t.Errorf("INSERTs per shard = %v; want %v (locations, tags, location_tags on asia and europe)", got, w)
	}

	// The relation reads back through the session.
	var back []*weather.Location
	if err := s.NewSelect().Model(&back).Relation("Tags").Order("id").Scan(ctx); err != nil {
		t.Fatalf("select with Tags = %v", err)
	}
	if len(back) != 2 || len(back[0].Tags) != 3 || len(back[1].Tags) != 1 || back[1].Tags[0].Name != "cold" {
		t.Fatalf("locations with Tags = %+v; want Tokyo with 3 tags and Oslo with cold", back)
	}
}

// TestUnitManyToManyAcrossShardsIsRefused links a new location to a tag
// stored on another shard: the join row would point to a row its shard
// lacks, so the flush fails before sending anything, naming the field.
func TestUnitManyToManyAcrossShardsIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	elsewhere := &weather.Tag{ID: 40, Name: "foggy"}
	if err := s.Insert(session.WithShardID(ctx, "europe"), elsewhere); err != nil {
		t.Fatal(err)
	}
	f.reset()
	uow := s.Begin()
	defer uow.Rollback(ctx)
	if err := uow.Add(&weather.Location{ID: 1, Continent: "Asia", City: "Tokyo", Tags: []weather.Tag{*elsewhere}}); err != nil {
		t.Fatal(err)
	}
	err := uow.Flush(ctx)
	if !errors.Is(err, session.ErrRelationDenied) {
		t.Fatalf("Flush of a link to a tag on another shard = %v; want ErrRelationDenied", err)
	}
	wantIn(t, err, "Location.Tags", "europe", "asia")
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused flush ran %v statements; want none", c)
	}
}

// TestUnitManyToManyOfStoredObject: a unit writes the join rows of new
// objects only, so a changed many-to-many relation of a stored object is
// refused by name rather than dropped; loading the relation (a select's
// Relation, LoadRelation) is not a change, and a second flush of new
// objects does not insert their join rows again.
func TestUnitManyToManyOfStoredObject(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	uow := s.Begin()
	tokyo := &weather.Location{ID: 1, Continent: "Asia", City: "Tokyo", Tags: []weather.Tag{{ID: 10, Name: "sunny"}}}
	if err := uow.Add(tokyo); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatalf("second Flush = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("second Flush with nothing changed ran %v statements; want none", c)
	}
	// A changed m2m field of a stored object writes its join rows now
	// (issue 11; it was refused before): see
	// TestUnitManyToManyAddRemoveClear. Here it is changed and put back.
	tokyo.Tags = append(tokyo.Tags, weather.Tag{ID: 11, Name: "windy"})
	tokyo.Tags = tokyo.Tags[:1]
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}

	loads := map[string]func(u *session.UnitOfWork) (*weather.Location, error){
		"select Relation": func(u *session.UnitOfWork) (*weather.Location, error) {
			var locs []*weather.Location
			err := u.NewSelect().Model(&locs).Relation("Tags").Scan(ctx)
			if err != nil || len(locs) != 1 {
				return nil, fmt.Errorf("%d rows, %v", len(locs), err)
			}
			return locs[0], nil
		},
		"Get then select Relation": func(u *session.UnitOfWork) (*weather.Location, error) {
			var loc *weather.Location
			if err := u.Get(ctx, &loc, 1); err != nil {
				return nil, err
			}
			var locs []*weather.Location
			if err := u.NewSelect().Model(&locs).Relation("Tags").Scan(ctx); err != nil {
				return nil, err
			}
			return loc, nil
		},
		"Get then LoadRelation": func(u *session.UnitOfWork) (*weather.Location, error) {
			var loc *weather.Location
			if err := u.Get(ctx, &loc, 1); err != nil {
				return nil, err
			}
			return loc, u.LoadRelation(ctx, loc, "Tags")
		},
	}
	for name, load := range loads {
		t.Run(name, func(t *testing.T) {
			u := s.Begin()
			defer u.Rollback(ctx)
			loc, err := load(u)
			if err != nil {
				t.Fatalf("load = %v", err)
			}
			if len(loc.Tags) != 1 || loc.Tags[0].ID != 10 {
				t.Fatalf("Tags = %+v; want tag 10", loc.Tags)
			}
			f.reset()
			if err := u.Flush(ctx); err != nil {
				t.Fatalf("Flush after loading Tags = %v; want nil (loading is not a change)", err)
			}
			if c := f.perShard(); !slices.Equal(c, zero4) {
				t.Errorf("Flush after loading Tags ran %v statements; want none", c)
			}

		})
	}
	if got := f.linksOn(t, "asia"); !slices.Equal(got, []string{"1-10"}) {
		t.Errorf("location_tags on asia = %v; want [1-10]", got)
	}
}
