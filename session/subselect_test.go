package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestSessionSelectAsSubquery guards issue 11 item 2: a session select used
// as an argument (Where("location_id IN (?)", sub)) renders on each shard's
// own query, with that shard's declared keys, for a select, a statement-form
// UPDATE and raw SQL, each equal to the same statement on the unsharded
// database; before, it rendered as {}. What cannot be right is refused
// before anything is sent.
func TestSessionSelectAsSubquery(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(24, 4, 31))

	sub := s.NewSelect().Model((*weather.Location)(nil)).Column("id").Where("city < ?", "City 0013")
	truthSub := f.single.NewSelect().Model((*weather.Location)(nil)).Column("id").Where("city < ?", "City 0013")
	var got, want []*weather.Report
	f.reset()
	if err := s.NewSelect().Model(&got).Where("location_id IN (?)", sub).Order("id").Scan(ctx); err != nil {
		t.Fatalf("select with a session subquery = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("select with a subquery ran %v statements per shard; want one on each (the subquery inlined)", c)
	}
	if err := f.single.NewSelect().Model(&want).Where("location_id IN (?)", truthSub).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repIDs(got), repIDs(want)) || len(want) == 0 {
		t.Errorf("rows = %v; the unsharded database has %v", repIDs(got), repIDs(want))
	}

	// Declared keys, split per shard by the chooser: each shard's subquery
	// holds its own continent.
	keyed := s.NewSelect().Model((*weather.Location)(nil)).Column("id").WhereShardKey("continent", "Asia", "Europe")
	truthKeyed := f.single.NewSelect().Model((*weather.Location)(nil)).Column("id").Where("continent IN (?)", bun.List([]string{"Asia", "Europe"}))
	got, want = nil, nil
	if err := s.NewSelect().Model(&got).Where("location_id IN (?)", keyed).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.single.NewSelect().Model(&want).Where("location_id IN (?)", truthKeyed).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repIDs(got), repIDs(want)) || len(want) == 0 {
		t.Errorf("rows with a keyed subquery = %v; the unsharded database has %v", repIDs(got), repIDs(want))
	}

	// A statement-form UPDATE and raw SQL.
	res, err := s.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 1000").Where("location_id IN (?)", sub).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wres, err := f.single.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 1000").Where("location_id IN (?)", truthSub).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := wres.RowsAffected(); res.RowsAffected != n || n == 0 {
		t.Errorf("UPDATE with a subquery affected %d; the unsharded database says %d", res.RowsAffected, n)
	}
	if g, w := flat(temps(t, f)), truthTemps(t, f); !maps2Equal(g, w) {
		t.Errorf("temperatures after the UPDATE = %v; the unsharded database has %v", g, w)
	}
	var counts []int
	if err := s.NewRaw("SELECT count(*) FROM weather_reports WHERE location_id IN (?)", keyed).Options(session.PerShard()).Scan(ctx, &counts); err != nil {
		t.Fatal(err)
	}
	var total, truth int
	for _, c := range counts {
		total += c
	}
	if err := f.single.NewRaw("SELECT count(*) FROM weather_reports WHERE location_id IN (?)", truthKeyed).Scan(ctx, &truth); err != nil {
		t.Fatal(err)
	}
	if total != truth || truth == 0 || len(counts) != 4 {
		t.Errorf("raw counts with a subquery = %v (sum %d); the unsharded database says %d", counts, total, truth)
	}

	// Refused, nothing sent.
	f.reset()
	var reps []*weather.Report
	pinned := s.NewSelect().Model((*weather.Location)(nil)).Column("id").Options(session.SetShardID("asia"))
	err = s.NewSelect().Model(&reps).Where("location_id IN (?)", pinned).Scan(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("a subquery pinned to asia in a select on every shard = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "Location", "asia", "Where")
	limited := s.NewSelect().Model((*weather.Location)(nil)).Column("id").Order("id").Limit(3)
	if err := s.NewSelect().Model(&reps).Where("location_id IN (?)", limited).Scan(ctx); !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("a subquery with Limit = %v; want ErrUnsupported", err)
	}
	if _, err := s.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 0").Where("location_id IN (?)", limited).Exec(ctx); !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("an UPDATE with a Limit subquery = %v; want ErrUnsupported", err)
	}
	loc := &weather.Location{ID: 500, Continent: "Asia", City: "x"}
	if _, err := s.NewInsert().Model(loc).Value("city", "(?)", sub).Exec(ctx); !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("an INSERT with a session subquery = %v; want ErrUnsupported", err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused statements ran %v statements per shard; want none", c)
	}
	// Pinned the same way as the outer statement, it runs.
	if err := s.NewSelect().Model(&reps).Where("location_id IN (?)", pinned).Options(session.SetShardID("asia")).Scan(ctx); err != nil {
		t.Errorf("a pinned subquery in a select pinned alike = %v", err)
	}
	// In a plain Bun query no shard is known: an error, not {}.
	err = f.shards["asia"].NewSelect().Model(&reps).Where("location_id IN (?)", sub).Scan(ctx)
	if err == nil {
		t.Error("a session select inside a plain Bun query ran; want an error")
	}
}

func maps2Equal(a, b map[int64]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}
