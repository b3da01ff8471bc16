package session_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestGetRereadsOwnShard guards that a Get with no key values reads the
// shard the object's Token records, even when the same key exists on
// another shard that the IdentityChooser names: before, it asked the
// chooser, read the other shard's row and re-tagged the object, so the next
// Update wrote the wrong shard. A Get with key values loads a new identity
// and replaces the Token, and leaves dst alone when it finds nothing.
func TestGetRereadsOwnShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// The IdentityChooser says key 77 lives on europe.
	toEurope := chooser.IdentityChooserFunc(func(context.Context, chooser.Key) (chooser.Target, error) {
		return chooser.Shards("europe"), nil
	})
	s, err := session.New(f.shards, weather.ShardChooser, toEurope, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	all := f.session(t) // IdentityChooser chooser.All
	for _, loc := range []*weather.Location{
		{ID: 77, Continent: "Asia", City: "Osaka"},
		{ID: 77, Continent: "Europe", City: "Oslo"},
	} {
		if err := s.Insert(ctx, loc); err != nil {
			t.Fatalf("Insert %s = %v", loc.City, err)
		}
	}
	load := func(t *testing.T) weather.Location {
		t.Helper()
		var loc weather.Location
		if err := s.NewSelect().Model(&loc).Where("id = 77").Options(session.SetShardID("asia")).Scan(ctx); err != nil {
			t.Fatalf("select on asia = %v", err)
		}
		return loc
	}
	onlyOn := func(t *testing.T, what string, id session.ShardID) {
		t.Helper()
		for i, n := range f.perShard() {
			want := 0
			if weather.Shards[i] == id {
				want = 1
			}
			if n != want {
				t.Errorf("%s ran %v statements per shard; want one on %s", what, f.perShard(), id)
				return
			}
		}
	}

	for _, tt := range []struct {
		name string
		s    *session.Session
		ctx  context.Context
	}{
		{"chooser says europe", s, ctx},
		{"chooser says every shard", all, ctx},
		{"Using(asia)", s.Using("asia"), ctx},
		{"Using(europe, asia)", s.Using("europe", "asia"), ctx},
		{"context asia", s, session.WithShardID(ctx, "asia")},
	} {
		t.Run("no key/"+tt.name, func(t *testing.T) {
			loc := load(t)
			loc.City = "unsaved"
			f.reset()
			if err := tt.s.Get(tt.ctx, &loc); err != nil {
				t.Fatalf("Get(&loc from asia) = %v", err)
			}
			if loc.City != "Osaka" {
				t.Errorf("Get(&loc from asia).City = %q; want Osaka, asia's row", loc.City)
			}
			if sh, _ := session.ShardOf(&loc); sh != "asia" || !loc.Pinned() {
				t.Errorf("after Get the token is %q (pinned %v); want asia, pinned as loaded", sh, loc.Pinned())
			}
			onlyOn(t, "Get(&loc from asia)", "asia")
		})
	}

	// The next Update writes the object's own shard.
	loc := load(t)
	if err := s.Get(ctx, &loc); err != nil {
		t.Fatal(err)
	}
	loc.City = "Kyoto"
	if err := s.Update(ctx, &loc); err != nil {
		t.Fatalf("Update = %v", err)
	}
	for id, want := range map[session.ShardID]string{"asia": "Kyoto", "europe": "Oslo"} {
		var got weather.Location
		if err := s.NewSelect().Model(&got).Where("id = 77").Options(session.SetShardID(id)).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if got.City != want {
			t.Errorf("row 77 on %s has city %q; want %q", id, got.City, want)
		}
	}

	// A pin that excludes the object's shard is refused, naming both.
	for _, tt := range []struct {
		name string
		s    *session.Session
		ctx  context.Context
	}{
		{"Using(europe)", s.Using("europe"), ctx},
		{"context europe", s, session.WithShardID(ctx, "europe")},
	} {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			loc := load(t)
			f.reset()
			err := tt.s.Get(tt.ctx, &loc)
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Fatalf("Get(&loc from asia) under %s = %v; want ErrInvalidArgument", tt.name, err)
			}
			wantIn(t, err, "asia", "europe")
			if c := f.perShard(); c[0]+c[1]+c[2]+c[3] != 0 {
				t.Errorf("refused Get ran %v statements; want none", c)
			}
			if sh, _ := session.ShardOf(&loc); sh != "asia" || loc.City != "Kyoto" {
				t.Errorf("refused Get changed loc to %s/%q; want it untouched", sh, loc.City)
			}
		})
	}

	// With the key given, Get loads a new identity: the chooser's shard, and
	// the Token says so.
	t.Run("key given", func(t *testing.T) {
		loc := load(t)
		f.reset()
		if err := s.Get(ctx, &loc, 77); err != nil {
			t.Fatalf("Get(&loc, 77) = %v", err)
		}
		if sh, _ := session.ShardOf(&loc); loc.City != "Oslo" || sh != "europe" || loc.Pinned() {
			t.Errorf("Get(&loc, 77) = %q on %s (pinned %v); want Oslo, europe's row, unpinned", loc.City, sh, loc.Pinned())
		}
		onlyOn(t, "Get(&loc, 77)", "europe")
	})
	// A key found nowhere leaves dst as it was: before, dst kept asia's
	// token and columns under the new key, for a later Update to write.
	t.Run("key not found", func(t *testing.T) {
		loc := load(t)
		loc.Reports = []*weather.Report{{ID: 1}}
		err := s.Get(ctx, &loc, 999)
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("Get(&loc, 999) = %v; want sql.ErrNoRows", err)
		}
		if sh, _ := session.ShardOf(&loc); loc.ID != 77 || loc.City != "Kyoto" || sh != "asia" || len(loc.Reports) != 1 {
			t.Errorf("after a missed Get loc = id %d, %q on %s, %d reports; want it untouched (77, Kyoto, asia, 1)",
				loc.ID, loc.City, sh, len(loc.Reports))
		}
	})
	// A found key replaces all of dst, relations included.
	t.Run("key found replaces dst", func(t *testing.T) {
		loc := load(t)
		loc.Reports = []*weather.Report{{ID: 1}}
		if err := all.Using("asia").Get(ctx, &loc, 77); err != nil {
			t.Fatal(err)
		}
		if loc.Reports != nil {
			t.Errorf("after Get(&loc, 77) loc.Reports = %v; want nil, as loaded", loc.Reports)
		}
	})
}
