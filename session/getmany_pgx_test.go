package session_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/pgxscan"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestGetManyPgxFastPath: on shards over pgx's database/sql driver with
// nothing that needs Bun's scan (no hooks), GetMany reads each shard's rows
// through internal/pgxscan, one fast-path statement per shard asked, and
// gives what Bun's own scan gives (pgxscan.Disabled), for *[]*T and *[]T,
// and for a model with float and time columns.
//
// Not parallel: pgxscan's switch and counter are the process's.
func TestGetManyPgxFastPath(t *testing.T) {
	ctx := context.Background()
	dsns := pgtest.Shared().NewDatabases(ctx, t, "gmpgx")
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range weather.Shards {
		cfg, err := pgx.ParseConfig(dsns[i])
		if err != nil {
			t.Fatal(err)
		}
		db := bun.NewDB(stdlib.OpenDB(*cfg), dialect)
		t.Cleanup(func() { db.Close() })
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatalf("create schema on %s: %v", id, err)
		}
		shards[id] = db
	}
	d := weather.Generate(40, 3, 5)
	s, err := session.New(shards, weather.ShardChooser, byID(d), weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &d.Locations); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &d.Reports); err != nil {
		t.Fatal(err)
	}
	// Reports: no chooser for their ids, so every shard is asked.
	all, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}

	// both runs get on the fast path and then on Bun's, checks that the
	// first took wantFast fast-path statements and the second none, and
	// that the two results are equal.
	both := func(what string, wantFast int64, get func(dst any) error, dst func() any) {
		t.Helper()
		fast, slow := dst(), dst()
		n := pgxscan.Taken.Load()
		if err := get(fast); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := pgxscan.Taken.Load() - n; got != wantFast {
			t.Errorf("%s took the pgx fast path for %d statements; want %d (one per shard asked)", what, got, wantFast)
		}
		pgxscan.Disabled.Store(true)
		defer pgxscan.Disabled.Store(false)
		n = pgxscan.Taken.Load()
		if err := get(slow); err != nil {
			t.Fatalf("%s through Bun: %v", what, err)
		}
		if got := pgxscan.Taken.Load() - n; got != 0 {
			t.Errorf("%s with pgxscan.Disabled took the fast path %d times; want 0", what, got)
		}
		f, b := reflect.ValueOf(fast).Elem(), reflect.ValueOf(slow).Elem()
		if f.Len() == 0 || !reflect.DeepEqual(f.Interface(), b.Interface()) {
			t.Errorf("%s: the pgx fast path gave\n%+v\nBun's scan gave\n%+v", what, f.Interface(), b.Interface())
		}
	}
	ids := []int64{17, 3, 40, 1, 22, 9, 3, 17}
	asked := int64(0)
	for _, h := range homes(d, ids) {
		asked += int64(h)
	}
	both("GetMany(*[]*Location)", asked, func(dst any) error { return s.GetMany(ctx, dst, ids) },
		func() any { return new([]*weather.Location) })
	both("GetMany(*[]Location)", asked, func(dst any) error { return s.GetMany(ctx, dst, ids) },
		func() any { return new([]weather.Location) })
	reps := []int64{d.Reports[0].ID, d.Reports[50].ID, d.Reports[119].ID, d.Reports[7].ID}
	both("GetMany(*[]*Report)", int64(len(weather.Shards)), func(dst any) error { return all.GetMany(ctx, dst, reps) },
		func() any { return new([]*weather.Report) })
	var got []*weather.Report
	if err := all.GetMany(ctx, &got, reps); err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		w := d.Reports[slices.IndexFunc(d.Reports, func(r *weather.Report) bool { return r.ID == reps[i] })]
		if r.ID != w.ID || r.LocationID != w.LocationID || r.Temperature != w.Temperature || !r.ReportTime.Equal(w.ReportTime) {
			t.Errorf("GetMany(reports)[%d] = %+v; want %+v", i, *r, w)
		}
	}
}
