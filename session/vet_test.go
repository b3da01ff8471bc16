package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// Every related object is vetted, whatever its values: a zero struct behind
// a non-nil pointer, or in a slice, is a related object like any other.
func TestRelationCheckVetsZeroObjects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	denyAll := chooser.RelationRouterFunc(func(context.Context, chooser.Object, chooser.Object) chooser.Verdict {
		return chooser.Deny
	})
	s, err := session.New(f.shards, chooser.NewRouters(weather.ShardChooser, denyAll), chooser.All, weather.ByContinent)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		loc  *weather.Location
	}{
		{"zero has-one behind a pointer", &weather.Location{ID: 1, Continent: "Asia", City: "a", Station: &weather.Station{}}},
		{"set has-one", &weather.Location{ID: 2, Continent: "Asia", City: "b", Station: &weather.Station{Name: "x"}}},
		{"zero has-many element", &weather.Location{ID: 3, Continent: "Asia", City: "c", Reports: []*weather.Report{{}}}},
		{"zero m2m value element", &weather.Location{ID: 4, Continent: "Asia", City: "d", Tags: []weather.Tag{{}}}},
	}
	for _, c := range cases {
		for _, op := range []string{"insert", "update"} {
			f.reset()
			var err error
			if op == "insert" {
				err = s.Insert(ctx, c.loc)
			} else {
				err = s.Update(ctx, &[]*weather.Location{c.loc})
			}
			if !errors.Is(err, session.ErrRelationDenied) {
				t.Errorf("%s of a location with a %s, under a router denying every relation = %v; want ErrRelationDenied",
					op, c.name, err)
			}
			if n := f.perShard(); !slices.Equal(n, []int{0, 0, 0, 0}) {
				t.Errorf("refused %s sent %v statements", op, n)
			}
		}
	}
	// Nil pointers and empty slices hold no object: nothing to deny.
	if err := s.Insert(ctx, &weather.Location{ID: 5, Continent: "Asia", City: "e"}); err != nil {
		t.Errorf("Insert of a location without related objects = %v", err)
	}
}

// A Bun subquery built on one shard's handle and inlined into a statement
// for another shard would read the other shard's rows: refused before
// anything is sent, as is one built on a database that is no shard.
func TestSubqueryFromAnotherShardIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 3, 9))
	locsOf := func(db bun.IDB, continent string) *bun.SelectQuery {
		return db.NewSelect().Table("weather_locations").Column("id").Where("continent = ?", continent)
	}
	europe := locsOf(f.shards["europe"], "Europe")

	refused := []struct {
		name string
		run  func() error
		want []string
	}{
		{"select pinned elsewhere", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Where("location_id IN (?)", europe).
				Options(session.SetShardID("asia")).Scan(ctx)
		}, []string{"argument 1 of Where", "shard europe", "runs on shard asia"}},
		{"select fanned out", func() error {
			_, err := s.NewSelect().Model((*weather.Report)(nil)).Where("location_id IN (?)", europe).Count(ctx)
			return err
		}, []string{"shard europe", "north_america"}},
		{"context pin, WhereOr", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Where("FALSE").WhereOr("location_id IN (?)", europe).
				Scan(session.WithShardID(ctx, "asia"))
		}, []string{"argument 1 of WhereOr", "asia"}},
		{"foreign database", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Where("location_id IN (?)", locsOf(f.single, "Europe")).
				Options(session.SetShardID("europe")).Scan(ctx)
		}, []string{"none of the session's shards"}},
		{"statement-form update", func() error {
			_, err := s.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = ?", 0).
				Where("location_id IN (?)", europe).Exec(ctx)
			return err
		}, []string{"update Report", "shard europe"}},
		{"statement-form delete", func() error {
			_, err := s.NewDelete().Model((*weather.Report)(nil)).Where("location_id IN (?)", europe).
				Options(session.SetShardID("south_america")).Exec(ctx)
			return err
		}, []string{"delete Report", "south_america"}},
		{"object insert, not pinned", func() error {
			loc := &weather.Location{ID: 900, Continent: "Asia", City: "x"}
			_, err := s.NewInsert().Model(loc).Value("city", "(?)", locsOf(f.shards["europe"], "Europe").Limit(1)).Exec(ctx)
			return err
		}, []string{"insert Location", "argument 1 of Value", "shard europe"}},
		{"object insert pinned elsewhere", func() error {
			loc := &weather.Location{ID: 901, Continent: "Asia", City: "x"}
			_, err := s.NewInsert().Model(loc).Value("city", "(?)", locsOf(f.shards["europe"], "Europe").Limit(1)).
				Options(session.SetShardID("asia")).Exec(ctx)
			return err
		}, []string{"insert Location", "shard europe", "runs on shard asia"}},
		{"object update pinned elsewhere", func() error {
			_, err := s.NewUpdate().Model(&weather.Location{ID: 1}).Set("city = (?)", locsOf(f.shards["europe"], "Europe").Limit(1)).
				Options(session.SetShardID("asia")).Exec(ctx)
			return err
		}, []string{"update Location", "argument 1 of Set", "shard europe", "runs on shard asia"}},
	}
	for _, c := range refused {
		f.reset()
		err := c.run()
		if !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("%s with a subquery built on europe = %v; want ErrInvalidArgument", c.name, err)
			continue
		}
		wantIn(t, err, c.want...)
		if n := f.perShard(); !slices.Equal(n, []int{0, 0, 0, 0}) {
			t.Errorf("%s: refused statement sent %v statements", c.name, n)
		}
	}

	// On its own shard the subquery runs, and finds that shard's rows.
	var reps []weather.Report
	if err := s.NewSelect().Model(&reps).Where("location_id IN (?)", europe).
		Options(session.SetShardID("europe")).Scan(ctx); err != nil {
		t.Fatalf("select on europe with europe's subquery = %v", err)
	}
	want, err := f.shards["europe"].NewSelect().Table("weather_reports").Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(reps)) != want || want == 0 {
		t.Errorf("select on europe with europe's subquery found %d reports; europe holds %d", len(reps), want)
	}
	// A subquery for every shard is built on the shard's own query.
	n, err := s.NewSelect().Model((*weather.Report)(nil)).Apply(func(b *bun.SelectQuery) *bun.SelectQuery {
		return b.Where("location_id IN (?)", b.NewSelect().Table("weather_locations").Column("id"))
	}).Count(ctx)
	if err != nil {
		t.Fatalf("fan-out with per-shard subqueries built in Apply = %v", err)
	}
	all, err := f.single.NewSelect().Table("weather_reports").Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) != all {
		t.Errorf("fan-out count = %d; the unsharded database has %d", n, all)
	}
}

// A Bun query built on one shard's handle and nested in an argument (in
// bun.In, bun.List, bun.SafeQuery's arguments, or a plain slice) is inlined
// all the same: refused before anything is sent, naming the call, the
// argument and where in it the query sits.
func TestNestedSubqueryFromAnotherShardIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 3, 9))
	europe := f.shards["europe"].NewSelect().Table("weather_locations").Column("id").Where("continent = ?", "Europe")

	//lint:ignore SA1019 the deprecated form, which apps still write
	in := bun.In
	nested := []struct {
		name  string
		query string
		arg   any
		want  []string
	}{
		{"bun.In of a slice", "location_id IN (?)", in([]any{europe}), []string{"element 1 of bun.In"}},
		{"bun.List", "location_id IN (?)", bun.List([]any{int64(1), europe}), []string{"element 2 of bun.List"}},
		{"bun.Tuple", "location_id IN ?", bun.Tuple([]any{europe}), []string{"element 1 of bun.Tuple"}},
		{"[]any", "location_id IN (?)", []any{europe}, []string{"element 1 of the slice"}},
		{"slice of queries", "location_id IN (?)", []*bun.SelectQuery{europe}, []string{"element 1 of the slice"}},
		{"bun.SafeQuery", "location_id IN (?)", bun.SafeQuery("?", europe), []string{"argument 1 of bun.SafeQuery"}},
		{"bun.In in a slice", "(location_id, location_id) IN (?)", []any{in([]any{europe})},
			[]string{"element 1 of the slice", "element 1 of bun.In"}},
	}
	for _, c := range nested {
		f.reset()
		_, err := s.NewSelect().Model((*weather.Report)(nil)).Where(c.query, c.arg).Count(ctx)
		if !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("fan-out with europe's subquery nested in %s = %v; want ErrInvalidArgument", c.name, err)
			continue
		}
		wantIn(t, err, append([]string{"argument 1 of Where", "shard europe"}, c.want...)...)
		if n := f.perShard(); !slices.Equal(n, []int{0, 0, 0, 0}) {
			t.Errorf("%s: refused statement sent %v statements", c.name, n)
		}
	}

	// Pinned to its own shard, the nested subquery runs there.
	var reps []weather.Report
	if err := s.NewSelect().Model(&reps).Where("location_id IN (?)", in([]any{europe})).
		Options(session.SetShardID("europe")).Scan(ctx); err != nil {
		t.Fatalf("select on europe with europe's subquery in bun.In = %v", err)
	}
	want, err := f.shards["europe"].NewSelect().Table("weather_reports").Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(reps)) != want || want == 0 {
		t.Errorf("select on europe with europe's subquery in bun.In found %d reports; europe holds %d", len(reps), want)
	}
	// Plain values in the same wrappers are no subqueries.
	if _, err := s.NewSelect().Model((*weather.Report)(nil)).Where("location_id IN (?)", in([]int64{1, 2})).
		Where("location_id IN (?)", bun.List([]int64{1, 2})).Where("?", bun.SafeQuery("TRUE")).Count(ctx); err != nil {
		t.Errorf("fan-out with plain values in bun.In, bun.List and bun.SafeQuery = %v", err)
	}
}
