package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// A pin (statement option, Using view, context) never silently moves a row
// off the shard its ShardChooser places it on: tenant isolation.
func TestPinnedWriteRefusesAnotherShardsObject(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	asia := session.WithShardID(ctx, "asia") // the request of "tenant" asia

	pins := []struct {
		name string
		run  func(model any, opts ...session.StatementOption) error
		by   string
	}{
		{"context", func(m any, o ...session.StatementOption) error { return s.Insert(asia, m, o...) }, "context (WithShardID)"},
		{"option", func(m any, o ...session.StatementOption) error {
			return s.Insert(ctx, m, append(o, session.SetShardID("asia"))...)
		}, "statement option"},
		{"using", func(m any, o ...session.StatementOption) error { return s.Using("asia").Insert(ctx, m, o...) }, "Using view"},
	}
	for _, p := range pins {
		t.Run(p.name, func(t *testing.T) {
			f.reset()
			paris := &weather.Location{ID: 7, Continent: "Europe", City: "Paris"}
			err := p.run(paris)
			if !errors.Is(err, session.ErrPinConflict) {
				t.Fatalf("Insert of a Europe location pinned to asia by %s = %v; want ErrPinConflict", p.name, err)
			}
			wantIn(t, err, "Location", "7", "asia", "europe", p.by, "PinWins")
			if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
				t.Errorf("refused Insert sent %v statements; want none", c)
			}
			if sh, ok := paris.Shard(); ok {
				t.Errorf("refused Insert set the token to %q", sh)
			}

			// A slice: one object of another shard refuses the whole write.
			f.reset()
			objs := []*weather.Location{{ID: 8, Continent: "Asia", City: "Seoul"}, {Continent: "Europe", City: "Rome"}}
			err = p.run(&objs)
			if !errors.Is(err, session.ErrPinConflict) {
				t.Fatalf("Insert of a mixed slice pinned to asia = %v; want ErrPinConflict", err)
			}
			wantIn(t, err, "element 1", "europe")
			if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
				t.Errorf("refused slice Insert sent %v statements; want none", c)
			}

			// PinWins: the caller says the pin places it.
			f.reset()
			err = p.run(paris, session.PinWins())
			if err != nil {
				t.Fatalf("Insert with PinWins = %v", err)
			}
			if sh, _ := paris.Shard(); sh != "asia" {
				t.Errorf("token after PinWins = %q; want asia", sh)
			}
			if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) {
				t.Errorf("Insert with PinWins ran %v statements; want one on asia", c)
			}
			// The pin agreeing with the chooser needs no option.
			if err := p.run(&[]*weather.Location{{ID: 9, Continent: "Asia", City: "Osaka"}}); err != nil {
				t.Fatalf("Insert of an Asia location pinned to asia = %v", err)
			}
			for _, id := range weather.Shards {
				got := f.rowsOn(t, id, "weather_locations")
				var want []int64
				if id == "asia" {
					want = []int64{7, 9}
				}
				if !slices.Equal(got, want) {
					t.Errorf("rows on %s = %v; want %v", id, got, want)
				}
			}
			if _, err := f.shards["asia"].NewDelete().Table("weather_locations").Where("TRUE").Exec(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Update and Delete of objects without a token check the pin as Insert does.
func TestPinnedUpdateDeleteRefuseAnotherShardsObject(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 0, 1))
	asia := session.WithShardID(ctx, "asia")

	// A fresh struct (no token) of a Europe location, with a known id.
	var eu weather.Location
	if err := s.NewSelect().Model(&eu).Where("continent = ?", "Europe").Limit(1).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := weather.Location{ID: eu.ID, Continent: eu.Continent, City: "renamed"}
	f.reset()
	err := s.Update(asia, &fresh)
	if !errors.Is(err, session.ErrPinConflict) {
		t.Fatalf("Update of a Europe location pinned to asia = %v; want ErrPinConflict", err)
	}
	wantIn(t, err, "update", fmt.Sprint(eu.ID), "asia", "europe")
	err = s.Delete(asia, &[]weather.Location{fresh})
	if !errors.Is(err, session.ErrPinConflict) {
		t.Fatalf("Delete of a Europe location pinned to asia = %v; want ErrPinConflict", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("refused Update/Delete sent %v statements; want none", c)
	}
	// Without the pin the chooser places it: updated where it lives.
	if err := s.Update(ctx, &fresh); err != nil {
		t.Fatalf("unpinned Update = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 1, 0}) {
		t.Errorf("unpinned Update ran %v statements; want one on europe", c)
	}
}

// A ShardChooser that cannot place an object (an empty answer, an error
// wrapping chooser.ErrNoOpinion, any other error, or a RoundRobin that places
// by turn) leaves it to the pin.
func TestPinPlacesWhatTheChooserCannot(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rr, err := chooser.NewRoundRobin(weather.Shards...)
	if err != nil {
		t.Fatal(err)
	}
	abstain := []struct {
		name string
		sc   chooser.ShardChooser
	}{
		{"empty", chooser.ShardChooserFunc(func(context.Context, *schema.Table, any) (identity.ShardID, error) { return "", nil })},
		{"no opinion", chooser.ShardChooserFunc(func(context.Context, *schema.Table, any) (identity.ShardID, error) {
			return "", fmt.Errorf("not mine: %w", chooser.ErrNoOpinion)
		})},
		{"error", chooser.ShardChooserFunc(func(context.Context, *schema.Table, any) (identity.ShardID, error) {
			return "", errors.New("no placement rule")
		})},
		{"round robin", chooser.First(chooser.ShardChooserFunc(func(context.Context, *schema.Table, any) (identity.ShardID, error) {
			return "", fmt.Errorf("not mine: %w", chooser.ErrNoOpinion)
		}), rr)},
	}
	for i, a := range abstain {
		t.Run(a.name, func(t *testing.T) {
			s, err := session.New(f.shards, a.sc, chooser.All, weather.ByContinent)
			if err != nil {
				t.Fatal(err)
			}
			f.reset()
			loc := &weather.Location{ID: int64(100 + i), Continent: "Europe", City: "x"}
			if err := s.Insert(session.WithShardID(ctx, "south_america"), loc); err != nil {
				t.Fatalf("pinned Insert with an abstaining chooser = %v", err)
			}
			if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 1}) {
				t.Errorf("pinned Insert ran %v statements; want one on south_america", c)
			}
		})
	}
	// The round robin was not asked under the pin: its first turn is still
	// the first shard.
	if id, _ := rr.ChooseShard(ctx, nil, nil); id != weather.Shards[0] {
		t.Errorf("RoundRobin's next turn = %s; want %s (a pinned write must not use a turn)", id, weather.Shards[0])
	}
}

// A unit of work begun on a Using view, or flushed under a context pin,
// refuses a new object its ShardChooser places on another shard.
func TestUnitPinConflict(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)

	u := s.Using("asia").Begin()
	defer u.Rollback(ctx)
	if err := u.Add(&weather.Location{ID: 1, Continent: "Europe", City: "Paris"}); err != nil {
		t.Fatal(err)
	}
	err := u.Flush(ctx)
	if !errors.Is(err, session.ErrPinConflict) {
		t.Fatalf("Flush of a Europe location in a unit on asia = %v; want ErrPinConflict", err)
	}
	wantIn(t, err, "Location", "asia", "europe", "Using view", "UnitPinWins")

	u2 := s.Begin()
	defer u2.Rollback(ctx)
	if err := u2.Add(&weather.Location{ID: 2, Continent: "Europe", City: "Rome"}); err != nil {
		t.Fatal(err)
	}
	err = u2.Flush(session.WithShardID(ctx, "asia"))
	if !errors.Is(err, session.ErrPinConflict) {
		t.Fatalf("Flush under a context pin to asia = %v; want ErrPinConflict", err)
	}
	wantIn(t, err, "context")
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("refused flushes sent %v statements; want none", c)
	}

	u3 := s.Using("asia").Begin(session.UnitPinWins())
	if err := u3.Add(&weather.Location{ID: 3, Continent: "Europe", City: "Oslo"}); err != nil {
		t.Fatal(err)
	}
	if err := u3.Commit(ctx); err != nil {
		t.Fatalf("Commit with UnitPinWins = %v", err)
	}
	if got := f.rowsOn(t, "asia", "weather_locations"); !slices.Equal(got, []int64{3}) {
		t.Errorf("rows on asia = %v; want [3]", got)
	}
}
