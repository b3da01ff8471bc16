package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// continents reads id -> continent of every location on each shard.
func continents(t *testing.T, f *fixture) map[session.ShardID]map[int64]string {
	t.Helper()
	out := map[session.ShardID]map[int64]string{}
	for _, id := range weather.Shards {
		var locs []weather.Location
		if err := f.shards[id].NewSelect().Model(&locs).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		out[id] = map[int64]string{}
		for _, l := range locs {
			out[id][l.ID] = l.Continent
		}
	}
	return out
}

// TestUpdateObjectsBuilder guards issue 11 item 2: NewUpdate of objects
// with Bulk writes one UPDATE ... FROM (VALUES ...) per shard, each object
// on the shard of its Token, and Column writes only the named columns (a
// changed shard-key column is not written, so no row moves off its shard);
// the rows equal the unsharded database's after the same Bun statement.
// Objects matching no row make a *WriteError, the others are written.
func TestUpdateObjectsBuilder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(16, 0, 9))
	var locs []*weather.Location
	if err := s.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range locs {
		l.City += " (renamed)"
		l.Continent = "Atlantis" // not written: Column("city")
	}
	f.reset()
	res, err := s.NewUpdate().Model(&locs).Column("city").Bulk().Exec(ctx)
	if err != nil {
		t.Fatalf("bulk update = %v", err)
	}
	if got := f.statementsLike("WITH"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("bulk UPDATE statements (WITH _data ...) per shard = %v; want one on each; all: %v", got, f.perShard())
	}
	if got := f.perShard(); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("statements per shard = %v; want one on each", got)
	}
	if res.RowsAffected != 16 || res.ByShard["asia"] != 4 {
		t.Errorf("Result = %+v; want 16 rows, 4 per shard", res)
	}
	if _, err := f.single.NewUpdate().Model(&locs).Column("city").Bulk().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	checkCities(t, f, "after bulk Column update")
	for id, rows := range continents(t, f) {
		for lid, c := range rows {
			if weather.ShardOfContinent[c] != id {
				t.Errorf("location %d on %s has continent %q after Column(\"city\")", lid, id, c)
			}
		}
	}

	// One object: one statement, on its shard.
	one := locs[2]
	one.City = "Solo"
	f.reset()
	res, err = s.NewUpdate().Model(one).Column("city").Exec(ctx)
	if err != nil || res.RowsAffected != 1 {
		t.Fatalf("update of one object = %+v, %v", res, err)
	}
	home, _ := one.Shard()
	want := make([]int, 4)
	want[slices.Index(weather.Shards, home)] = 1
	if got := f.perShard(); !slices.Equal(got, want) {
		t.Errorf("update of one object on %s ran %v statements per shard; want %v", home, got, want)
	}
	if _, err := f.single.NewUpdate().Model(one).Column("city").WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	checkCities(t, f, "after one object's update")

	// Objects that match no row: the others are written, the error says which.
	ghost := &weather.Location{ID: 999, Continent: "Europe", City: "Ghost"}
	ghost.SetShard("europe")
	mixed := []*weather.Location{locs[0], ghost, locs[1]}
	for _, l := range mixed {
		l.City = "Mixed " + fmt.Sprint(l.ID)
	}
	res, err = s.NewUpdate().Model(&mixed).Column("city").Bulk().Exec(ctx)
	var we *session.WriteError
	if !errors.As(err, &we) || !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("update with a missing row = %v; want a *WriteError matching sql.ErrNoRows", err)
	}
	if len(we.Missing) != 1 || we.Missing[0].Index != 1 || len(we.Written) != 2 || res.RowsAffected != 2 {
		t.Errorf("WriteError missing %+v, written %+v, result %+v; want element 1 missing, 2 written", we.Missing, we.Written, res)
	}
	written := []*weather.Location{locs[0], locs[1]}
	if _, err := f.single.NewUpdate().Model(&written).Column("city").Bulk().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	checkCities(t, f, "after a write with a missing row")

	// Bad input, nothing sent.
	f.reset()
	for _, c := range []struct {
		name string
		q    *session.UpdateQuery
		part string
	}{
		{"slice without Bulk", s.NewUpdate().Model(&locs), "Bulk()"},
		{"unknown column", s.NewUpdate().Model(&locs).Column("nope").Bulk(), "nope"},
		{"Column on a statement", s.NewUpdate().Model((*weather.Location)(nil)).Column("city").Set("city = 'x'").Where("TRUE"), "Model(&obj)"},
		{"Bulk of one object", s.NewUpdate().Model(one).Bulk(), "Bulk"},
		{"WhereShardKey on objects", s.NewUpdate().Model(one).WhereShardKey("continent", "Asia"), "WhereShardKey"},
	} {
		if _, err := c.q.Exec(ctx); !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("%s = %v; want ErrInvalidArgument", c.name, err)
		} else {
			wantIn(t, err, c.part)
		}
	}
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("refused updates ran %v statements per shard; want none", got)
	}

	// In a unit: rolled back with it.
	before := cities(t, f)
	boom := errors.New("boom")
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		for _, l := range locs {
			l.City = "Undone"
		}
		if _, err := u.NewUpdate().Model(&locs).Column("city").Bulk().Exec(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if after := cities(t, f); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a rolled-back unit's object update stayed:\nafter  %v\nbefore %v", after, before)
	}
}
