package session_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// dvNote is a model for the view-DDL test, on every shard of the fixture.
type dvNote struct {
	bun.BaseModel `bun:"table:dv_notes"`
	session.Token

	ID   int64  `bun:",pk"`
	Text string `bun:",notnull"`
}

// TestViewScopesTableDDL guards that CreateTables, DropTables, Tables and
// Placement on a Using view (or under a context pin) act on the view's
// shards only: before, they looped over every shard, so
// Using("asia").DropTables dropped every shard's tables, rows included.
func TestViewScopesTableDDL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	models := []any{(*dvNote)(nil)}
	if err := s.CreateTables(ctx, models); err != nil {
		t.Fatalf("CreateTables = %v", err)
	}
	for i, id := range weather.Shards {
		if err := s.Insert(ctx, &dvNote{ID: int64(i + 1), Text: string(id)}, session.SetShardID(id)); err != nil {
			t.Fatalf("Insert on %s = %v", id, err)
		}
	}
	has := func(t *testing.T) []session.ShardID {
		t.Helper()
		got, err := s.Tables(ctx, models...)
		if err != nil {
			t.Fatalf("Tables = %v", err)
		}
		return slices.Sorted(maps.Keys(got))
	}
	others := func(view ...session.ShardID) []session.ShardID {
		var out []session.ShardID
		for _, id := range weather.Shards {
			if !slices.Contains(view, id) {
				out = append(out, id)
			}
		}
		return out
	}
	// quiet fails if a shard outside view ran any statement since reset.
	quiet := func(t *testing.T, what string, view ...session.ShardID) {
		t.Helper()
		for _, id := range others(view...) {
			if q := f.counts[id].statements(); len(q) > 0 {
				t.Errorf("%s ran %d statements on %s, outside the view %v: %q", what, len(q), id, view, q)
			}
		}
	}

	f.reset()
	if err := s.Using("asia").DropTables(ctx, models); err != nil {
		t.Fatalf(`Using("asia").DropTables = %v`, err)
	}
	quiet(t, `Using("asia").DropTables`, "asia")
	if got, want := has(t), slices.Sorted(slices.Values(others("asia"))); !slices.Equal(got, want) {
		t.Fatalf(`after Using("asia").DropTables the table is on %v; want %v`, got, want)
	}
	for i, id := range weather.Shards {
		if id == "asia" {
			continue
		}
		if got := f.rowsOn(t, id, "dv_notes"); !slices.Equal(got, []int64{int64(i + 1)}) {
			t.Errorf("rows on %s after dropping asia's table = %v; want [%d]", id, got, i+1)
		}
	}

	f.reset()
	if err := s.Using("asia").CreateTables(ctx, models); err != nil {
		t.Fatalf(`Using("asia").CreateTables = %v`, err)
	}
	quiet(t, `Using("asia").CreateTables`, "asia")

	// Drop everywhere, then create through a two-shard view and a context pin.
	if err := s.DropTables(ctx, models); err != nil {
		t.Fatalf("DropTables = %v", err)
	}
	f.reset()
	if err := s.Using("europe", "asia").CreateTables(ctx, models); err != nil {
		t.Fatalf(`Using("europe", "asia").CreateTables = %v`, err)
	}
	quiet(t, `Using("europe", "asia").CreateTables`, "europe", "asia")
	if got := has(t); !slices.Equal(got, []session.ShardID{"asia", "europe"}) {
		t.Fatalf(`after Using("europe", "asia").CreateTables the table is on %v; want [asia europe]`, got)
	}
	f.reset()
	if err := s.CreateTables(session.WithShardID(ctx, "north_america"), models); err != nil {
		t.Fatalf("CreateTables under a context pin = %v", err)
	}
	quiet(t, "CreateTables under a context pin", "north_america")
	if got := has(t); !slices.Equal(got, []session.ShardID{"asia", "europe", "north_america"}) {
		t.Fatalf("after CreateTables under a context pin the table is on %v; want [asia europe north_america]", got)
	}

	// The reports: Tables and Placement of a view name its shards only.
	f.reset()
	tables, err := s.Using("europe", "south_america").Tables(ctx, models...)
	if err != nil {
		t.Fatalf("Using(...).Tables = %v", err)
	}
	if got := slices.Sorted(maps.Keys(tables)); !slices.Equal(got, []session.ShardID{"europe"}) {
		t.Errorf(`Using("europe", "south_america").Tables = %v; want europe only`, got)
	}
	quiet(t, "Using(...).Tables", "europe", "south_america")
	f.reset()
	placed, err := s.Using("south_america").Placement(ctx, models...)
	if err != nil {
		t.Fatalf("Using(...).Placement = %v", err)
	}
	if got := slices.Sorted(maps.Keys(placed)); !slices.Equal(got, []session.ShardID{"south_america"}) {
		t.Errorf(`Using("south_america").Placement = %v; want south_america only`, got)
	}
	quiet(t, "Using(...).Placement", "south_america")

	// A view of nothing, or of an unknown shard, does nothing anywhere.
	for _, tt := range []struct {
		name string
		s    *session.Session
		ctx  context.Context
		want error
	}{
		{"Using()", s.Using(), ctx, session.ErrInvalidArgument},
		{`WithShardID(ctx, "")`, s, session.WithShardID(ctx, ""), session.ErrInvalidArgument},
		{`Using("mars")`, s.Using("mars"), ctx, session.ErrUnknownShard},
	} {
		f.reset()
		errs := []error{
			tt.s.DropTables(tt.ctx, models),
			tt.s.CreateTables(tt.ctx, models),
		}
		_, err := tt.s.Tables(tt.ctx, models...)
		errs = append(errs, err)
		_, err = tt.s.Placement(tt.ctx, models...)
		errs = append(errs, err)
		for i, err := range errs {
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: DDL call %d = %v; want %v", tt.name, i, err, tt.want)
			}
		}
		quiet(t, tt.name)
	}
	if got := has(t); !slices.Equal(got, []session.ShardID{"asia", "europe", "north_america"}) {
		t.Errorf("after the refused calls the table is on %v; want [asia europe north_america]", got)
	}
}
