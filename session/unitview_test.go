package session_test

import (
	"context"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestUnitOnViewRefusesWritesElsewhere guards issue 11 item 1 for every
// way a write leaves a unit begun on a Using view of one shard (asia), and
// on a view of two (asia, north_america): a NewInsert of an object the
// ShardChooser places elsewhere or pinned elsewhere, a NewUpdate of an
// object stored elsewhere, a raw statement pinned elsewhere, and a flush
// of an added object, a change and a delete of objects stored elsewhere,
// each fail naming the shard and the model, and send nothing to any
// shard.
func TestUnitOnViewRefusesWritesElsewhere(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 12))
	for _, view := range [][]session.ShardID{{"asia"}, {"asia", "north_america"}} {
		var eu weather.Location // stored on europe, loaded outside the unit
		must(t, s.Get(ctx, &eu, 3))
		if id, _ := eu.Shard(); id != "europe" {
			t.Fatalf("location 3 is on %q; want europe", id)
		}
		u := s.Using(view...).Begin()
		// On a view of two shards a write of objects is refused whatever
		// its shard (it needs one shard: TestUnitOnMultiShardView).
		objs, flush := []string{"europe", "Location"}, []string{"europe", "Location"}
		if len(view) > 1 {
			objs = []string{"Location", "a write of objects needs exactly one"}
			flush = objs[1:]
		}
		refused := func(what string, err error, parts ...string) {
			t.Helper()
			if err == nil {
				t.Errorf("%v: %s succeeded; want it refused", view, what)
				return
			}
			wantIn(t, err, parts...)
			if got := f.perShard(); !slices.Equal(got, zero4) {
				t.Errorf("%v: refused %s ran %v statements per shard; want none", view, what, got)
			}
		}

		f.reset()
		_, err := u.NewInsert().Model(&weather.Location{ID: 901, Continent: "Europe", City: "Lyon"}).Exec(ctx)
		refused("NewInsert of a European location", err, objs...)
		_, err = u.NewInsert().Model(&weather.Location{ID: 902, Continent: "Asia", City: "Osaka"}).
			Options(session.SetShardID("europe")).Exec(ctx)
		refused("NewInsert pinned to europe", err, "europe", "Location")
		copied := eu
		copied.City = "moved"
		_, err = u.NewUpdate().Model(&copied).Column("city").Exec(ctx)
		refused("NewUpdate of an object stored on europe", err, objs...)
		_, err = u.NewRaw("UPDATE weather_locations SET city = city").Options(session.SetShardID("europe")).Exec(ctx)
		refused("raw UPDATE pinned to europe", err, "europe")
		var got weather.Location
		err = u.NewRaw("SELECT * FROM weather_locations WHERE id = 3").Options(session.SetShardID("europe")).Scan(ctx, &got)
		refused("raw SELECT pinned to europe", err, "europe")

		// Flushes: an added object the chooser places on europe, a change
		// of an object stored there, its delete.
		must(t, u.Add(&weather.Location{ID: 903, Continent: "Europe", City: "Porto"}))
		refused("Flush of an added European location", u.Flush(ctx), flush...)
		must(t, u.ExpungeAll())
		stored := eu
		must(t, u.Delete(&stored))
		refused("Flush of the delete of a location stored on europe", u.Flush(ctx), flush...)
		must(t, u.ExpungeAll())
		must(t, u.Rollback(ctx))
	}
	// Nothing reached europe.
	var cities []string
	must(t, f.shards["europe"].NewSelect().Table("weather_locations").Column("city").Where("id IN (3, 901, 902, 903)").Scan(ctx, &cities))
	if len(cities) != 1 || cities[0] == "moved" {
		t.Errorf("europe holds cities %q for ids 3, 901-903; want location 3 unchanged only", cities)
	}
}
