package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestBuilderFragmentsAnsweredPerShard: SQL text given to a fan-out
// builder (ColumnExpr, Where, Join, Set) that each shard would apply to
// its own rows only (an aggregate, a window, DISTINCT, a subquery's ORDER
// BY ... LIMIT) is ErrUnsupported naming the call and the clause, and
// sends nothing. Before, a ColumnExpr("count(*)") over 4 shards returned
// four counts, a Where with a LIMIT 2 subquery 8 rows, and an UPDATE
// setting a column to a subquery's max used each shard's own max. Pinned
// to one shard, or with PerShard, they run.
func TestBuilderFragmentsAnsweredPerShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(20, 3, 17))
	type row struct{ N int64 }
	cases := []struct {
		name, call, clause string
		run                func(opts ...session.StatementOption) error
	}{
		{"ColumnExpr count", "ColumnExpr", "count()", func(opts ...session.StatementOption) error {
			var rows []row
			return s.NewSelect().Model((*weather.Location)(nil)).ColumnExpr("count(*) AS n").Options(opts...).Scan(ctx, &rows)
		}},
		{"ColumnExpr window", "ColumnExpr", "OVER", func(opts ...session.StatementOption) error {
			var ids []int64
			return s.NewSelect().Model((*weather.Location)(nil)).ColumnExpr("max(id) OVER ()").Options(opts...).Scan(ctx, &ids)
		}},
		{"ColumnExpr DISTINCT", "ColumnExpr", "DISTINCT", func(opts ...session.StatementOption) error {
			var cs []string
			return s.NewSelect().Model((*weather.Location)(nil)).ColumnExpr("DISTINCT continent").Options(opts...).Scan(ctx, &cs)
		}},
		{"Where with a LIMIT subquery", "Where", "LIMIT", func(opts ...session.StatementOption) error {
			var locs []weather.Location
			return s.NewSelect().Model(&locs).Where("id IN (SELECT id FROM weather_locations ORDER BY id LIMIT 2)").Options(opts...).Scan(ctx)
		}},
		{"Count with a LIMIT subquery", "Where", "LIMIT", func(opts ...session.StatementOption) error {
			_, err := s.NewSelect().Model((*weather.Location)(nil)).Where("id IN (SELECT id FROM weather_locations LIMIT 2)").Options(opts...).Count(ctx)
			return err
		}},
		{"UPDATE Set to a subquery's max", "Set", "max()", func(opts ...session.StatementOption) error {
			_, err := s.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = (SELECT max(temperature) FROM weather_reports)").
				Where("true").Options(opts...).Exec(ctx)
			return err
		}},
		{"DELETE with a LIMIT subquery", "Where", "LIMIT", func(opts ...session.StatementOption) error {
			_, err := s.NewDelete().Model((*weather.Report)(nil)).Where("id IN (SELECT id FROM weather_reports ORDER BY id LIMIT 3)").
				Options(opts...).Exec(ctx)
			return err
		}},
	}
	for _, c := range cases {
		f.reset()
		err := c.run()
		if !errors.Is(err, session.ErrUnsupported) {
			t.Errorf("%s on 4 shards = %v; want ErrUnsupported", c.name, err)
			continue
		}
		wantIn(t, err, c.call, c.clause, "4 shards", "PerShard")
		if n := f.perShard(); !slices.Equal(n, zero4) {
			t.Errorf("refused %s ran %v statements per shard; want none", c.name, n)
		}
		if err := c.run(session.SetShardID("asia")); err != nil {
			t.Errorf("%s pinned to asia = %v; want it run", c.name, err)
		}
	}
	// PerShard: each shard's own count, one row per shard.
	var rows []row
	must(t, s.NewSelect().Model((*weather.Location)(nil)).ColumnExpr("count(*) AS n").Options(session.PerShard()).Scan(ctx, &rows))
	var total int64
	for _, r := range rows {
		total += r.N
	}
	if len(rows) != 4 || total != 20 {
		t.Errorf("PerShard counts = %v; want 4 rows summing to 20", rows)
	}
	// A plain fan-out stays as it was.
	var locs []weather.Location
	must(t, s.NewSelect().Model(&locs).Where("id IN (SELECT location_id FROM weather_reports WHERE temperature > ?)", -1000.0).Scan(ctx))
	if len(locs) == 0 {
		t.Errorf("a colocated subquery without per-shard clauses found nothing")
	}
}

// TestPinAgainstDeclaredKeyIsRefused: a statement pinned to one shard
// whose declared shard key routes only to another (tenant A's request
// asking for tenant B's rows) is ErrPinConflict naming both, and sends
// nothing; before, it ran on the pin and answered nothing (a select's
// empty result, an UPDATE of 0 rows). A key whose shards include the pin
// runs there; PinWins runs it on the pin anyway.
func TestPinAgainstDeclaredKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(20, 3, 17))
	asia := session.WithShardID(ctx, "asia")
	cases := []struct {
		name string
		run  func(ctx context.Context, opts ...session.StatementOption) error
	}{
		{"select", func(ctx context.Context, opts ...session.StatementOption) error {
			var locs []weather.Location
			return s.NewSelect().Model(&locs).WhereShardKey("continent", "Europe").Options(opts...).Scan(ctx)
		}},
		{"select with a routing Where", func(ctx context.Context, opts ...session.StatementOption) error {
			var locs []weather.Location
			return s.NewSelect().Model(&locs).Where("continent = ?", "Europe").WhereShardKey("continent", "Europe").Options(opts...).Scan(ctx)
		}},
		{"count", func(ctx context.Context, opts ...session.StatementOption) error {
			_, err := s.NewSelect().Model((*weather.Location)(nil)).WhereShardKey("continent", "Europe").Options(opts...).Count(ctx)
			return err
		}},
		{"update", func(ctx context.Context, opts ...session.StatementOption) error {
			_, err := s.NewUpdate().Model((*weather.Location)(nil)).Set("city = city").WhereShardKey("continent", "Europe").Options(opts...).Exec(ctx)
			return err
		}},
		{"delete", func(ctx context.Context, opts ...session.StatementOption) error {
			_, err := s.NewDelete().Model((*weather.Report)(nil)).Where("false").Options(opts...).Exec(ctx)
			return err
		}},
	}
	for i, c := range cases {
		for _, pin := range []struct {
			name string
			ctx  context.Context
			opts []session.StatementOption
		}{
			{"WithShardID", asia, nil},
			{"SetShardID", ctx, []session.StatementOption{session.SetShardID("asia")}},
		} {
			f.reset()
			err := c.run(pin.ctx, pin.opts...)
			if i == len(cases)-1 { // no declared key: the pin stands
				if err != nil {
					t.Errorf("%s under %s with no declared key = %v; want it run on asia", c.name, pin.name, err)
				}
				continue
			}
			if !errors.Is(err, session.ErrPinConflict) {
				t.Errorf("%s of Europe under %s(asia) = %v; want ErrPinConflict", c.name, pin.name, err)
				continue
			}
			wantIn(t, err, "asia", "europe", "continent", "PinWins")
			if n := f.perShard(); !slices.Equal(n, zero4) {
				t.Errorf("refused %s ran %v statements per shard; want none", c.name, n)
			}
			f.reset()
			if err := c.run(pin.ctx, append(pin.opts, session.PinWins())...); err != nil {
				t.Errorf("%s of Europe under %s(asia) with PinWins = %v; want it run on asia", c.name, pin.name, err)
			}
			only(t, f, c.name+" with PinWins", "asia")
		}
	}
	// A key whose shards include the pin runs on the pin.
	var locs []weather.Location
	must(t, s.NewSelect().Model(&locs).WhereShardKey("continent", "Asia", "Europe").Scan(asia))
	for _, l := range locs {
		if l.Continent != "Asia" {
			t.Errorf("pinned to asia, WhereShardKey(Asia, Europe) returned a %s row", l.Continent)
		}
	}
	if len(locs) == 0 {
		t.Errorf("pinned to asia, WhereShardKey(Asia, Europe) returned nothing")
	}
}
