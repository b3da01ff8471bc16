package session_test

import (
	"context"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestGetByShardEncodedID: with ids that encode their shard's bucket, the
// FromID chooser sends every Get to the one shard that holds the row: one
// statement, no fan-out.
func TestGetByShardEncodedID(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	layout := identity.DefaultLayout()
	assign := chooser.Spread(layout.Buckets(), weather.Shards...)
	byID, err := chooser.NewFromID("id", layout, assign)
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(f.shards, weather.ShardChooser, byID, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	// One generator per shard, on the first bucket that shard owns.
	gens := map[session.ShardID]*identity.Generator{}
	for b, id := range assign {
		if gens[id] == nil {
			if gens[id], err = identity.NewGenerator(layout, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	var locs []*weather.Location
	for i := range 40 {
		c := weather.Continents[i%4]
		id, err := gens[weather.ShardOfContinent[c]].Next()
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, &weather.Location{ID: id, Continent: c, City: c + " city"})
	}
	if err := s.Insert(ctx, &locs); err != nil {
		t.Fatal(err)
	}
	for _, want := range locs {
		f.reset()
		var got weather.Location
		if err := s.Get(ctx, &got, want.ID); err != nil {
			t.Fatalf("Get(%d) = %v", want.ID, err)
		}
		home := weather.ShardOfContinent[want.Continent]
		wantCounts := make([]int, 4)
		wantCounts[slices.Index(weather.Shards, home)] = 1
		if c := f.perShard(); !slices.Equal(c, wantCounts) {
			t.Fatalf("Get(%d) of a %s row ran %v statements; want %v", want.ID, want.Continent, c, wantCounts)
		}
		if got.City != want.City {
			t.Errorf("Get(%d).City = %q; want %q", want.ID, got.City, want.City)
		}
	}
}
