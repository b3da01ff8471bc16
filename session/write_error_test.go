package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// refs renders a WriteError list as index@shard.
func refs(rs []session.ObjectRef) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Shard)+":"+strconv.Itoa(r.Index))
	}
	return out
}

// A slice Update or Delete in which some objects match no row names the
// objects written (and committed) and those not.
func TestSliceWriteNamesWrittenAndMissing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 0, 2))

	// Two asia locations and one europe location, loaded with tokens.
	var locs []*weather.Location
	if err := s.NewSelect().Model(&locs).Where("continent IN (?, ?)", "Asia", "Europe").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var asia, europe []*weather.Location
	for _, l := range locs {
		if l.Continent == "Asia" {
			asia = append(asia, l)
		} else {
			europe = append(europe, l)
		}
	}
	if len(asia) < 2 || len(europe) < 1 {
		t.Fatalf("seed: %d asia, %d europe locations; want 2 and 1", len(asia), len(europe))
	}
	objs := []*weather.Location{asia[0], europe[0], asia[1]}
	// The row of objs[2] disappears behind the session's back.
	if _, err := f.shards["asia"].NewDelete().Table("weather_locations").Where("id = ?", asia[1].ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range objs {
		l.City = "renamed"
	}
	f.reset()
	err := s.Update(ctx, &objs)
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Update with a vanished row = %v; want sql.ErrNoRows", err)
	}
	we, ok := errors.AsType[*session.WriteError](err)
	if !ok {
		t.Fatalf("Update error %v is not a *WriteError", err)
	}
	if got, want := refs(we.Missing), []string{"asia:2"}; !slices.Equal(got, want) {
		t.Errorf("Missing = %v; want %v", got, want)
	}
	if got, want := refs(we.Written), []string{"asia:0", "europe:1"}; !slices.Equal(got, want) {
		t.Errorf("Written = %v; want %v", got, want)
	}
	if len(we.Missing) == 1 && !slices.Equal(we.Missing[0].PK, []any{asia[1].ID}) {
		t.Errorf("Missing[0].PK = %v; want [%d]", we.Missing[0].PK, asia[1].ID)
	}
	wantIn(t, err, "1 of 3", "written")
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 1, 0}) {
		t.Errorf("Update ran %v statements; want one on asia and one on europe", c)
	}
	if q := f.sqlOn("asia", "WITH"); len(q) != 1 || !strings.Contains(q[0], `RETURNING "location"."id"`) {
		t.Errorf("asia's bulk UPDATE = %q; want one statement returning the primary keys", q)
	}
	// The written rows are written; the error said so.
	for _, l := range []*weather.Location{asia[0], europe[0]} {
		var city string
		id := weather.ShardOfContinent[l.Continent]
		if err := f.shards[id].NewSelect().Table("weather_locations").Column("city").Where("id = ?", l.ID).Scan(ctx, &city); err != nil {
			t.Fatal(err)
		}
		if city != "renamed" {
			t.Errorf("location %d on %s has city %q after the Update; want renamed", l.ID, id, city)
		}
	}

	// Delete: the same report.
	f.reset()
	err = s.Delete(ctx, &objs)
	we, ok = errors.AsType[*session.WriteError](err)
	if !ok || !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Delete with a vanished row = %v; want a *WriteError matching sql.ErrNoRows", err)
	}
	if got, want := refs(we.Missing), []string{"asia:2"}; !slices.Equal(got, want) {
		t.Errorf("Delete Missing = %v; want %v", got, want)
	}
	if got, want := refs(we.Written), []string{"asia:0", "europe:1"}; !slices.Equal(got, want) {
		t.Errorf("Delete Written = %v; want %v", got, want)
	}
	for _, id := range []session.ShardID{"asia", "europe"} {
		for _, l := range objs {
			if slices.Contains(f.rowsOn(t, id, "weather_locations"), l.ID) {
				t.Errorf("location %d still on %s after Delete", l.ID, id)
			}
		}
	}
	// A slice that matches every row is no error.
	reps := []*weather.Report{}
	if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, &reps); err != nil {
		t.Errorf("Delete of every report = %v", err)
	}
}

// A per-shard error keeps its chain for a slice as for one object.
func TestSliceWriteKeepsErrorChain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mars := chooser.ShardChooserFunc(func(_ context.Context, _ *schema.Table, obj any) (identity.ShardID, error) {
		if obj.(*weather.Location).Continent == "Mars" {
			return "mars", nil
		}
		return weather.ShardOfContinent[obj.(*weather.Location).Continent], nil
	})
	s, err := session.New(f.shards, mars, chooser.All, weather.ByContinent)
	if err != nil {
		t.Fatal(err)
	}
	one := &weather.Location{ID: 1, Continent: "Mars", City: "Olympus"}
	many := []*weather.Location{{ID: 2, Continent: "Asia", City: "Tokyo"}, one}
	for name, model := range map[string]any{"one": one, "slice": &many} {
		err := s.Insert(ctx, model)
		if !errors.Is(err, session.ErrUnknownShard) {
			t.Errorf("Insert(%s) with a chooser naming mars = %v; want ErrUnknownShard", name, err)
		}
	}
	wantIn(t, s.Insert(ctx, &many), "element 1", "mars")
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("refused inserts sent %v statements", c)
	}
}
