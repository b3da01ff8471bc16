package session_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/session"
)

// syncReading has a double precision column (float64), a nullable one
// (*float64) and a numeric one held in a float64.
type syncReading struct {
	bun.BaseModel `bun:"table:sync_readings,alias:r"`
	session.Token

	ID    int64    `bun:",pk"`
	Shard string   `bun:",notnull"`
	Temp  float64  `bun:",notnull"`
	Opt   *float64 `bun:""`
	Money float64  `bun:"type:numeric(10,2),notnull"`
}

// SyncEvaluate computes comparisons and "col = col + ?" of a double
// precision column in Go as PostgreSQL computes them (NaN equal to itself
// and above every number; NULL stays NULL), and refuses what it cannot
// compute exactly (a float32 argument, a numeric column) before sending.
func TestSyncEvaluateFloat8(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	for _, id := range []session.ShardID{"north_america", "asia", "europe", "south_america"} {
		if _, err := f.shards[id].NewCreateTable().Model((*syncReading)(nil)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	five := 5.0
	rows := []*syncReading{
		{ID: 1, Shard: "asia", Temp: 79.5, Opt: &five},
		{ID: 2, Shard: "asia", Temp: math.NaN()},
		{ID: 3, Shard: "europe", Temp: 80},
		{ID: 4, Shard: "europe", Temp: math.Inf(-1)},
		{ID: 5, Shard: "europe", Temp: 100, Opt: nil},
	}
	for _, r := range rows {
		if err := s.Using(session.ShardID(r.Shard)).Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var got []*syncReading
	if err := uow.NewSelect().Model(&got).Order("id").Scan(ctx); err != nil || len(got) != 5 {
		t.Fatalf("select = %v, %v", got, err)
	}
	byID := map[int64]*syncReading{}
	for _, r := range got {
		byID[r.ID] = r
	}
	// temp >= 80 holds for NaN (2), 80 (3) and 100 (5), in PostgreSQL.
	f.reset()
	if _, err := uow.NewUpdate().Model((*syncReading)(nil)).Where("temp >= ?", 80).Set("opt = opt + ?", 1.5).
		Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if byID[1].Opt == nil || *byID[1].Opt != 5 || byID[2].Opt != nil || byID[5].Opt != nil {
		t.Errorf("opt after opt + 1.5 where temp >= 80: 1 %v, 2 %v, 5 %v; want 5 (no match), NULL, NULL", byID[1].Opt, byID[2].Opt, byID[5].Opt)
	}
	if _, err := uow.NewUpdate().Model((*syncReading)(nil)).Where("temp >= ?", 80).Set("temp = temp - ?", 0.25).
		Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[int64]float64{1: 79.5, 3: 79.75, 4: math.Inf(-1), 5: 99.75}
	for id, w := range want {
		if byID[id].Temp != w {
			t.Errorf("temp of %d after evaluate = %v; want %v", id, byID[id].Temp, w)
		}
	}
	if !math.IsNaN(byID[2].Temp) {
		t.Errorf("temp of 2 (NaN) = %v; want NaN", byID[2].Temp)
	}
	for _, r := range got {
		var held float64
		db, err := uow.DB(ctx, session.ShardID(r.Shard)) // inside the unit's transaction
		if err != nil {
			t.Fatal(err)
		}
		if err := db.NewSelect().Model((*syncReading)(nil)).Column("temp").
			Where("id = ?", r.ID).Scan(ctx, &held); err != nil {
			t.Fatal(err)
		}
		if !(held == r.Temp || math.IsNaN(held) && math.IsNaN(r.Temp)) {
			t.Errorf("row %d holds %v; the tracked object %v", r.ID, held, r.Temp)
		}
	}
	// temp = NaN matches NaN only; temp <> NaN every other row.
	if _, err := uow.NewDelete().Model((*syncReading)(nil)).Where("temp = ?", math.NaN()).
		Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := uow.IdentityKey(byID[2]); !errors.Is(err, session.ErrNotTracked) {
		t.Errorf("the NaN row after DELETE where temp = NaN is tracked (%v); want it gone", err)
	}
	if _, err := uow.IdentityKey(byID[1]); err != nil {
		t.Errorf("row 1 after DELETE where temp = NaN: %v; want it tracked", err)
	}

	// Refused before sending.
	f.reset()
	for name, q := range map[string]*session.UpdateQuery{
		"float32 argument": uow.NewUpdate().Model((*syncReading)(nil)).Where("temp >= ?", float32(80.1)).Set("temp = ?", 1.0),
		"numeric column":   uow.NewUpdate().Model((*syncReading)(nil)).Where("money >= ?", 1.0).Set("temp = ?", 1.0),
		"numeric add":      uow.NewUpdate().Model((*syncReading)(nil)).Where("id = ?", 1).Set("money = money + ?", 1.0),
		"other column add": uow.NewUpdate().Model((*syncReading)(nil)).Where("id = ?", 1).Set("temp = opt + ?", 1.0),
	} {
		_, err := q.Options(session.Synchronize(session.SyncEvaluate)).Exec(ctx)
		if !errors.Is(err, session.ErrUnsupported) {
			t.Errorf("%s: %v; want ErrUnsupported", name, err)
		}
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused statements sent %v", c)
	}
}
