package session_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// byID knows which shard each location id is on, as a directory would.
func byID(d weather.Data) chooser.IdentityChooser {
	return chooser.IdentityChooserFunc(func(_ context.Context, k chooser.Key) (chooser.Target, error) {
		id := k.PK[0].(int64) // the session gives choosers the column's type, whatever the caller passed
		return chooser.Shards(weather.ShardOfContinent[d.Locations[id-1].Continent]), nil
	})
}

func TestGetKnownShardRunsOneStatement(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(8, 1, 1)
	f.seed(t, f.session(t), d)
	s, err := session.New(f.shards, weather.ShardChooser, byID(d), weather.ByContinent)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range d.Locations {
		f.reset()
		var got weather.Location
		if err := s.Get(ctx, &got, int(want.ID)); err != nil {
			t.Fatalf("Get(%d) = %v", want.ID, err)
		}
		if got.City != want.City || got.Continent != want.Continent {
			t.Errorf("Get(%d) = %s/%s; want %s/%s", want.ID, got.City, got.Continent, want.City, want.Continent)
		}
		home := weather.ShardOfContinent[want.Continent]
		if sh, _ := session.ShardOf(&got); sh != home {
			t.Errorf("ShardOf(Get(%d)) = %q; want %q", want.ID, sh, home)
		}
		counts := f.perShard()
		total := 0
		for i, n := range counts {
			total += n
			if weather.Shards[i] != home && n != 0 {
				t.Errorf("Get(%d) ran %d statements on %s; want 0", want.ID, n, weather.Shards[i])
			}
		}
		if total != 1 {
			t.Errorf("Get(%d) ran %v statements per shard; want exactly 1 on %s", want.ID, counts, home)
		}
	}
}

func TestGetProbesAllCandidates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(8, 1, 2)
	s := f.session(t)
	f.seed(t, s, d)

	var got weather.Location
	if err := s.Get(ctx, &got, int64(6)); err != nil {
		t.Fatalf("Get(6) = %v", err)
	}
	if got.City != d.Locations[5].City {
		t.Errorf("Get(6).City = %q; want %q", got.City, d.Locations[5].City)
	}
	if c := f.perShard(); c[0]+c[1]+c[2]+c[3] != 4 {
		t.Errorf("Get(6) with chooser.All ran %v statements; want one on each shard", c)
	}

	err := s.Get(ctx, &got, 999)
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Get(999) = %v; want an error satisfying errors.Is(err, sql.ErrNoRows)", err)
	}

	inOrder := f.session(t, session.WithProbe(session.ProbeInOrder))
	f.reset()
	// Location 1 is in North America, the first shard in order: one statement.
	if err := inOrder.Get(ctx, &got, 1); err != nil {
		t.Fatalf("ProbeInOrder Get(1) = %v", err)
	}
	if c := f.perShard(); c[0] != 1 || c[1]+c[2]+c[3] != 0 {
		t.Errorf("ProbeInOrder Get(1) ran %v statements; want [1 0 0 0]", c)
	}
}

func TestGetSameKeyOnTwoShards(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	asia := &weather.Location{ID: 1, Continent: "Asia", City: "Tokyo"}
	europe := &weather.Location{ID: 1, Continent: "Europe", City: "London"}
	if err := s.Insert(ctx, asia); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, europe); err != nil {
		t.Fatal(err)
	}

	var a, e weather.Location
	if err := s.Get(session.WithShardID(ctx, "asia"), &a, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Using("europe").Get(ctx, &e, 1); err != nil {
		t.Fatal(err)
	}
	if a.City != "Tokyo" || e.City != "London" {
		t.Errorf("Get(1) on asia, europe = %q, %q; want Tokyo, London", a.City, e.City)
	}
	if sa, _ := a.Shard(); sa != "asia" {
		t.Errorf("token of asia's object = %q", sa)
	}
	if se, _ := e.Shard(); se != "europe" {
		t.Errorf("token of europe's object = %q", se)
	}

	err := s.Get(ctx, &a, 1)
	if !errors.Is(err, session.ErrAmbiguous) {
		t.Fatalf("Get(1) over all shards = %v; want ErrAmbiguous", err)
	}
	wantIn(t, err, "asia", "europe")
}

func TestGetBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	var loc weather.Location
	var lt weather.LocationTag
	tests := []struct {
		name  string
		err   error
		words []string
	}{
		{"nil", s.Get(ctx, nil, 1), []string{"nil"}},
		{"non-pointer", s.Get(ctx, loc, 1), []string{"pointer"}},
		{"slice", s.Get(ctx, &[]weather.Location{}, 1), []string{"pointer to a model struct"}},
		{"arity", s.Get(ctx, &loc, 1, 2), []string{"Location", "1 column", "id", "got 2"}},
		{"composite arity", s.Get(ctx, &lt, 1), []string{"LocationTag", "location_id, tag_id", "got 1"}},
		{"key type", s.Get(ctx, &loc, "seven"), []string{"id", "int64", "string"}},
		{"unknown shard in ctx", s.Get(session.WithShardID(ctx, "mars"), &loc, 1), []string{"mars"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unknown shard in ctx" {
				if !errors.Is(tt.err, session.ErrUnknownShard) {
					t.Fatalf("err = %v; want ErrUnknownShard", tt.err)
				}
			} else if !errors.Is(tt.err, session.ErrInvalidArgument) {
				t.Fatalf("err = %v; want ErrInvalidArgument", tt.err)
			}
			wantIn(t, tt.err, tt.words...)
		})
	}
	if c := f.perShard(); c[0]+c[1]+c[2]+c[3] != 0 {
		t.Errorf("bad input sent %v statements; want none", c)
	}
}

func TestGetCompositeKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	loc := &weather.Location{ID: 3, Continent: "Asia", City: "Osaka"}
	tag := &weather.Tag{ID: 9, Name: "coastal"}
	if err := s.Insert(ctx, loc); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, tag, session.SetShardID("asia")); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &weather.LocationTag{LocationID: 3, TagID: 9, Location: loc}); err != nil {
		t.Fatal(err)
	}
	var got weather.LocationTag
	if err := s.Get(ctx, &got, 3, 9); err != nil {
		t.Fatalf("Get(3, 9) = %v", err)
	}
	if got.LocationID != 3 || got.TagID != 9 {
		t.Errorf("Get(3, 9) = %+v", got)
	}
	// The key already set on the destination works too.
	key := weather.LocationTag{LocationID: 3, TagID: 9}
	if err := s.Get(ctx, &key); err != nil {
		t.Fatalf("Get(&{3 9}) = %v", err)
	}
	if err := s.Get(ctx, &got, 3, 10); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get(3, 10) = %v; want sql.ErrNoRows", err)
	}
}

func TestNewValidates(t *testing.T) {
	f := newFixture(t)
	other := map[session.ShardID]bun.IDB{}
	for id, db := range f.shards {
		other[id] = db
	}
	// A shard built on its own dialect instance.
	dsn := f.dsns[0]
	lone := openOwnDialect(t, dsn)
	other["north_america"] = lone

	tests := []struct {
		name  string
		build func() error
		words []string
	}{
		{"empty", func() error {
			_, err := session.New(nil, weather.ShardChooser, chooser.All, chooser.All)
			return err
		}, []string{"empty"}},
		{"nil shard chooser", func() error {
			_, err := session.New(f.shards, nil, chooser.All, chooser.All)
			return err
		}, []string{"ShardChooser"}},
		{"nil identity chooser", func() error {
			_, err := session.New(f.shards, weather.ShardChooser, nil, chooser.All)
			return err
		}, []string{"IdentityChooser"}},
		{"nil execute chooser", func() error {
			_, err := session.New(f.shards, weather.ShardChooser, chooser.All, nil)
			return err
		}, []string{"ExecuteChooser"}},
		{"dialects", func() error {
			_, err := session.New(other, weather.ShardChooser, chooser.All, chooser.All)
			return err
		}, []string{"dialect", "north_america", "pgdialect.New()"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Fatalf("New = %v; want ErrInvalidArgument", err)
			}
			wantIn(t, err, tt.words...)
		})
	}
}
