package session_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func reportIDs(rs []*weather.Report) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// TestFanOutMatchesUnsharded runs the same statements on the four shards and
// on one database holding every row, and compares.
func TestFanOutMatchesUnsharded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(60, 7, 7))

	type build func(q *bun.SelectQuery) *bun.SelectQuery
	tests := []struct {
		name   string
		sess   func(q *session.SelectQuery) *session.SelectQuery
		single build
		sorted bool // the result is ordered by the statement itself
	}{
		{"all", func(q *session.SelectQuery) *session.SelectQuery { return q }, func(q *bun.SelectQuery) *bun.SelectQuery { return q }, false},
		{"where", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("temperature > ?", 20.5) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("temperature > ?", 20.5) }, false},
		{"order desc limit", func(q *session.SelectQuery) *session.SelectQuery { return q.Order("temperature DESC", "id").Limit(25) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("temperature DESC", "id").Limit(25) }, true},
		{"order asc offset limit", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Order("temperature", "id DESC").Offset(40).Limit(30)
		}, func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Order("temperature", "id DESC").Offset(40).Limit(30)
		}, true},
		{"order by time", func(q *session.SelectQuery) *session.SelectQuery { return q.Order("report_time DESC").Limit(50) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("report_time DESC").Limit(50) }, true},
		{"offset past end", func(q *session.SelectQuery) *session.SelectQuery { return q.Order("id").Offset(10000).Limit(5) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id").Offset(10000).Limit(5) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want []*weather.Report
			if err := tt.sess(s.NewSelect().Model(&got)).Scan(ctx); err != nil {
				t.Fatalf("sharded Scan = %v", err)
			}
			if err := tt.single(f.single.NewSelect().Model(&want)).Scan(ctx); err != nil {
				t.Fatalf("unsharded Scan = %v", err)
			}
			g, w := reportIDs(got), reportIDs(want)
			if len(w) == 0 && tt.name != "offset past end" { // else the comparison below proves nothing
				t.Fatalf("the unsharded database gave no rows")
			}
			if !tt.sorted {
				slices.Sort(g)
				slices.Sort(w)
			}
			if !slices.Equal(g, w) {
				t.Errorf("sharded ids = %v\nunsharded ids = %v", g, w)
			}
			for _, r := range got {
				if sh, _ := r.Shard(); sh == "" {
					t.Fatalf("report %d has no shard token", r.ID)
				}
			}
		})
	}

	n, err := s.NewSelect().Model((*weather.Report)(nil)).Where("temperature < ?", 0.0).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.single.NewSelect().Model((*weather.Report)(nil)).Where("temperature < ?", 0.0).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) != want || want == 0 {
		t.Errorf("Count = %d; unsharded %d", n, want)
	}
	ok, err := s.NewSelect().Model((*weather.Report)(nil)).Where("temperature = ?", 99.0).Exists(ctx)
	if err != nil || ok {
		t.Errorf("Exists(99.0) = %v, %v; want false", ok, err)
	}
	ok, err = s.NewSelect().Model((*weather.Report)(nil)).Where("id = ?", 400).Exists(ctx)
	if err != nil || !ok {
		t.Errorf("Exists(id 400) = %v, %v; want true", ok, err)
	}

	// Scan into separate column slices, concatenated across shards.
	var ids []int64
	if err := s.NewSelect().Model((*weather.Location)(nil)).Column("id").Scan(ctx, &ids); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(ids); len(ids) != 60 || ids[0] != 1 || ids[59] != 60 {
		t.Errorf("Scan(&ids) = %v; want 1..60", ids)
	}
	by, err := session.ScanByShard[weather.Location](ctx, s.NewSelect().Model((*weather.Location)(nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range weather.Shards {
		if len(by[id]) != 15 {
			t.Errorf("ScanByShard[%s] has %d rows; want 15", id, len(by[id]))
		}
		for _, l := range by[id] {
			if l.Continent != weather.Continents[i] {
				t.Errorf("ScanByShard[%s] holds a %s location", id, l.Continent)
			}
		}
	}
}

func TestRelationsStayOnShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(8, 3, 8)
	f.seed(t, s, d)
	tags := []*weather.Tag{{ID: 1, Name: "asia-tag"}}
	if err := s.Insert(ctx, &tags, session.SetShardID("asia")); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &weather.LocationTag{LocationID: 2, TagID: 1, Location: d.Locations[1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &weather.Station{ID: 5, LocationID: 2, Name: "Haneda"}, session.SetShardID("asia")); err != nil {
		t.Fatal(err)
	}
	f.reset()

	var locs []*weather.Location
	err := s.NewSelect().Model(&locs).Relation("Reports").Relation("Tags").Relation("Station").
		Options(session.SetShardID("asia")).Order("id").Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Parent, has-many and m2m: three statements, all on asia.
	if c := f.perShard(); !slices.Equal(c, []int{0, 3, 0, 0}) {
		t.Errorf("pinned select with relations ran %v statements; want [0 3 0 0]", c)
	}
	if len(locs) != 2 {
		t.Fatalf("asia has %d locations; want 2", len(locs))
	}
	for _, l := range locs {
		if len(l.Reports) != 3 {
			t.Errorf("location %d has %d reports; want 3", l.ID, len(l.Reports))
		}
		for _, r := range l.Reports {
			if sh, _ := r.Shard(); sh != "asia" || r.LocationID != l.ID {
				t.Errorf("report %d of location %d: shard %q", r.ID, l.ID, sh)
			}
		}
	}
	if len(locs[0].Tags) != 1 || locs[0].Tags[0].Name != "asia-tag" {
		t.Errorf("m2m tags of location 2 = %+v", locs[0].Tags)
	}
	if sh, _ := locs[0].Tags[0].Shard(); sh != "asia" {
		t.Errorf("m2m tag shard = %q; want asia", sh)
	}
	// Has-one (a join in the parent statement).
	if st := locs[0].Station; st == nil || st.Name != "Haneda" {
		t.Errorf("has-one station of location 2 = %+v; want Haneda", st)
	} else if sh, _ := st.Shard(); sh != "asia" {
		t.Errorf("has-one station shard = %q; want asia", sh)
	}
	if locs[1].Station != nil {
		t.Errorf("location 6 has station %+v; want none", locs[1].Station)
	}

	// Belongs-to (a join) in a fan-out: every report comes with its own
	// location, from the report's shard.
	f.reset()
	var reps []*weather.Report
	if err := s.NewSelect().Model(&reps).Relation("Location").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("fan-out with belongs-to ran %v statements; want one per shard", c)
	}
	if len(reps) != 24 {
		t.Errorf("got %d reports; want 24", len(reps))
	}
	for _, r := range reps {
		rs, _ := r.Shard()
		ls, _ := r.Location.Shard()
		if r.Location == nil || r.Location.ID != r.LocationID || rs != ls || rs != weather.ShardOfContinent[r.Location.Continent] {
			t.Errorf("report %d: shard %q, location %+v on %q", r.ID, rs, r.Location, ls)
		}
	}
}

func TestRoutingPrecedence(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 1, 9))

	count := func(ctx context.Context, q *session.SelectQuery) []int {
		t.Helper()
		f.reset()
		var locs []weather.Location
		if err := q.Model(&locs).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		return f.perShard()
	}
	if c := count(ctx, s.NewSelect()); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("chooser: %v", c)
	}
	ctxEU := session.WithShardID(ctx, "europe")
	if c := count(ctxEU, s.NewSelect()); !slices.Equal(c, []int{0, 0, 1, 0}) {
		t.Errorf("context europe: %v; want [0 0 1 0]", c)
	}
	if c := count(ctxEU, s.NewSelect().Options(session.SetShardID("asia"))); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("option asia over context europe: %v; want [0 1 0 0]", c)
	}
	if c := count(ctx, s.NewSelect().Options(session.SetShardIDs("south_america", "asia"))); !slices.Equal(c, []int{0, 1, 0, 1}) {
		t.Errorf("SetShardIDs: %v; want [0 1 0 1]", c)
	}
	if c := count(ctx, s.NewSelect().WhereShardKey("continent", "Europe")); !slices.Equal(c, []int{0, 0, 1, 0}) {
		t.Errorf("WhereShardKey Europe: %v; want [0 0 1 0]", c)
	}
	if c := count(ctx, s.Using("north_america").NewSelect()); !slices.Equal(c, []int{1, 0, 0, 0}) {
		t.Errorf("Using north_america: %v; want [1 0 0 0]", c)
	}
	r, err := s.NewSelect().Model((*weather.Location)(nil)).WhereShardKey("continent", "Asia", "Europe").Route(ctx)
	if err != nil || r.String() != "[asia europe] by chooser" {
		t.Errorf("Route = %v, %v; want [asia europe] by chooser", r, err)
	}
}

func TestInListSplitPerShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(16, 0, 10))
	var locs []weather.Location
	err := s.NewSelect().Model(&locs).WhereShardKey("continent", "Asia", "Europe", "South America").Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locs) != 12 {
		t.Errorf("got %d locations; want 12", len(locs))
	}
	if n := len(f.counts["north_america"].statements()); n != 0 {
		t.Errorf("north_america ran %d statements; want 0", n)
	}
	for i, id := range weather.Shards[1:] {
		sqls := f.counts[id].statements()
		if len(sqls) != 1 {
			t.Fatalf("%s ran %d statements; want 1", id, len(sqls))
		}
		own := weather.Continents[i+1]
		if !strings.Contains(sqls[0], "'"+own+"'") {
			t.Errorf("%s SQL lacks its own key %q: %s", id, own, sqls[0])
		}
		for _, other := range weather.Continents {
			if other != own && strings.Contains(sqls[0], "'"+other+"'") {
				t.Errorf("%s SQL carries %q, another shard's key: %s", id, other, sqls[0])
			}
		}
	}
}

func TestSelectBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 11))
	var reps []weather.Report
	var one weather.Report
	var cnt int
	none := chooser.ExecuteChooserFunc(func(context.Context, *chooser.Statement) (chooser.Target, error) {
		return chooser.None(), nil
	})
	mars := chooser.ExecuteChooserFunc(func(context.Context, *chooser.Statement) (chooser.Target, error) {
		return chooser.Shards("asia", "mars"), nil
	})
	sNone, _ := session.New(f.shards, weather.ShardChooser, chooser.All, none)
	sMars, _ := session.New(f.shards, weather.ShardChooser, chooser.All, mars)

	tests := []struct {
		name  string
		err   error
		is    error
		words []string
	}{
		{"unknown pinned shard", s.NewSelect().Model(&reps).Options(session.SetShardID("mars")).Scan(ctx), session.ErrUnknownShard, []string{"mars"}},
		{"unknown context shard", s.NewSelect().Model(&reps).Scan(session.WithShardID(ctx, "mars")), session.ErrUnknownShard, []string{"mars", "context"}},
		{"chooser names unknown shard", sMars.NewSelect().Model(&reps).Scan(ctx), session.ErrUnknownShard, []string{"mars", "chooser"}},
		{"chooser chooses none", sNone.NewSelect().Model(&reps).Scan(ctx), session.ErrNoShard, []string{"none", "Report"}},
		{"nil model", s.NewSelect().Model(nil).Scan(ctx), session.ErrInvalidArgument, []string{"nil"}},
		{"non-pointer model", s.NewSelect().Model(reps).Scan(ctx), session.ErrInvalidArgument, []string{"pointer"}},
		{"no model", s.NewSelect().Scan(ctx), session.ErrInvalidArgument, []string{"no model"}},
		{"text order merge", s.NewSelect().Model(&reps).Relation("Location").Order("id").OrderExpr("location.city").Scan(ctx), session.ErrUnsupported, []string{"location.city"}},
		{"unknown shard key column", s.NewSelect().Model(&reps).WhereShardKey("nope", 1).Scan(ctx), session.ErrInvalidArgument, []string{"nope", "Report"}},
		{"scalar over shards", s.NewSelect().Model((*weather.Report)(nil)).ColumnExpr("count(*)").Scan(ctx, &cnt), session.ErrUnsupported, []string{"4 shards"}},
		{"count group by", func() error {
			_, err := s.NewSelect().Model((*weather.Report)(nil)).Group("location_id").Count(ctx)
			return err
		}(), session.ErrUnsupported, []string{"GROUP BY"}},
		{"single row from several shards", s.NewSelect().Model(&one).Where("temperature > ?", -100.0).Scan(ctx), session.ErrAmbiguous, []string{"Order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.is) {
				t.Fatalf("err = %v; want %v", tt.err, tt.is)
			}
			wantIn(t, tt.err, tt.words...)
		})
	}
	var locs []weather.Location
	err := s.NewSelect().Model(&locs).Order("city").Scan(ctx)
	if !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("ORDER BY text across shards = %v; want ErrUnsupported", err)
	}
	// The same order on one shard is just passed to PostgreSQL.
	if err := s.NewSelect().Model(&locs).Order("city").Options(session.SetShardID("asia")).Scan(ctx); err != nil {
		t.Errorf("ORDER BY text on one shard = %v", err)
	}
	// A single-row select with an order picks the global first.
	if err := s.NewSelect().Model(&one).Order("temperature DESC", "id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var top weather.Report
	if err := f.single.NewSelect().Model(&top).Order("temperature DESC", "id").Limit(1).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if one.ID != top.ID {
		t.Errorf("ordered single-row select = report %d; unsharded says %d", one.ID, top.ID)
	}
}

func TestScatterGuard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t, session.WithScatterGuard())
	f.seed(t, s, weather.Generate(8, 1, 12))
	var locs []weather.Location
	err := s.NewSelect().Model(&locs).Scan(ctx)
	if !errors.Is(err, session.ErrScatter) {
		t.Fatalf("unkeyed select under the guard = %v; want ErrScatter", err)
	}
	wantIn(t, err, "Location", "all 4 shards", "AllowScatter")
	var loc weather.Location
	if err := s.Get(ctx, &loc, 1); !errors.Is(err, session.ErrScatter) {
		t.Errorf("Get with chooser.All under the guard = %v; want ErrScatter", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("guarded statements sent %v", c)
	}
	if err := s.NewSelect().Model(&locs).WhereShardKey("continent", "Asia").Scan(ctx); err != nil || len(locs) != 2 {
		t.Errorf("keyed select = %d rows, %v; want 2, nil", len(locs), err)
	}
	if err := s.NewSelect().Model(&locs).Options(session.AllowScatter()).Scan(ctx); err != nil || len(locs) != 8 {
		t.Errorf("AllowScatter select = %d rows, %v; want 8, nil", len(locs), err)
	}
	plain := f.session(t)
	if err := plain.NewSelect().Model(&locs).Options(session.DenyScatter()).Scan(ctx); !errors.Is(err, session.ErrScatter) {
		t.Errorf("DenyScatter = %v; want ErrScatter", err)
	}
}
