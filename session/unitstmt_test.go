package session_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// temps reads every report's temperature on each shard: shard -> id -> temperature.
func temps(t *testing.T, f *fixture) map[session.ShardID]map[int64]float64 {
	t.Helper()
	out := map[session.ShardID]map[int64]float64{}
	for _, id := range weather.Shards {
		var reps []weather.Report
		if err := f.shards[id].NewSelect().Model(&reps).Column("id", "temperature").Scan(context.Background()); err != nil {
			t.Fatalf("read reports on %s: %v", id, err)
		}
		out[id] = map[int64]float64{}
		for _, r := range reps {
			out[id][r.ID] = r.Temperature
		}
	}
	return out
}

// truthTemps reads every report's temperature on the unsharded database.
func truthTemps(t *testing.T, f *fixture) map[int64]float64 {
	t.Helper()
	var reps []weather.Report
	if err := f.single.NewSelect().Model(&reps).Column("id", "temperature").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[int64]float64{}
	for _, r := range reps {
		out[r.ID] = r.Temperature
	}
	return out
}

func flat(m map[session.ShardID]map[int64]float64) map[int64]float64 {
	out := map[int64]float64{}
	for _, rows := range m {
		maps.Copy(out, rows)
	}
	return out
}

// TestUnitStatementsRunInItsTransactions guards issue 11 item 1: a unit's
// NewUpdate and NewDelete run inside its per-shard transactions, so a
// rollback undoes them on every shard and a commit keeps them (before, a
// shard a unit only changed by statement counted as read and its COMMIT
// was a ROLLBACK), one statement per shard, with the rows one database
// holding every row would have; and the Session's own statements inside
// RunInTx autocommit, outside the unit, as documented.
func TestUnitStatementsRunInItsTransactions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(16, 4, 11))
	before := temps(t, f)

	// Rolled back: nothing stays, on any shard.
	f.reset()
	boom := errors.New("boom")
	err := s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		res, err := u.NewUpdate().Model((*weather.Report)(nil)).
			Set("temperature = temperature + 1000").Where("temperature > ?", 0.0).Exec(ctx)
		if err != nil {
			return err
		}
		if res.RowsAffected == 0 || len(res.ByShard) != 4 {
			t.Errorf("update in unit = %+v; want rows on 4 shards", res)
		}
		if _, err := u.NewDelete().Model((*weather.Report)(nil)).Where("temperature < ?", 0.0).Exec(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("RunInTx = %v; want boom", err)
	}
	if got := f.statementsLike("UPDATE"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("UPDATE statements per shard = %v; want one on each", got)
	}
	if got := f.statementsLike("DELETE"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("DELETE statements per shard = %v; want one on each", got)
	}
	if after := temps(t, f); !maps.EqualFunc(after, before, maps.Equal) {
		t.Errorf("rows after the rollback differ from before it:\nafter  %v\nbefore %v", after, before)
	}

	// Committed: the rows are what the unsharded database has after the
	// same statements.
	var upd, del session.Result
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		var err error
		upd, err = u.NewUpdate().Model((*weather.Report)(nil)).
			Set("temperature = temperature + 1000").Where("temperature > ?", 0.0).Exec(ctx)
		if err != nil {
			return err
		}
		del, err = u.NewDelete().Model((*weather.Report)(nil)).Where("temperature < ?", 0.0).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("RunInTx = %v", err)
	}
	wu, err := f.single.NewUpdate().Model((*weather.Report)(nil)).
		Set("temperature = temperature + 1000").Where("temperature > ?", 0.0).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wd, err := f.single.NewDelete().Model((*weather.Report)(nil)).Where("temperature < ?", 0.0).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := wu.RowsAffected(); upd.RowsAffected != n || n == 0 {
		t.Errorf("update affected %d; the unsharded database says %d", upd.RowsAffected, n)
	}
	if n, _ := wd.RowsAffected(); del.RowsAffected != n || n == 0 {
		t.Errorf("delete affected %d; the unsharded database says %d", del.RowsAffected, n)
	}
	after := temps(t, f)
	if got, want := flat(after), truthTemps(t, f); !maps.Equal(got, want) {
		t.Errorf("rows after commit = %v; the unsharded database has %v", got, want)
	}
	for _, id := range weather.Shards {
		if int64(len(before[id])-len(after[id])) != del.ByShard[id] {
			t.Errorf("shard %s lost %d rows; ByShard says %d", id, len(before[id])-len(after[id]), del.ByShard[id])
		}
	}

	// The Session's statements autocommit: inside a unit that rolls back,
	// s.NewUpdate stays written and u.NewUpdate does not.
	left := slices.Sorted(maps.Keys(flat(after)))
	id1, id2 := left[0], left[1]
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		if _, err := s.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 1").
			Where("id = ?", id1).Exec(ctx); err != nil {
			return err
		}
		if _, err := u.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 2").
			Where("id = ?", id2).Exec(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("RunInTx = %v; want boom", err)
	}
	got := flat(temps(t, f))
	if got[id1] != 1 {
		t.Errorf("report %d = %v; the session's own UPDATE autocommits and should stay (1)", id1, got[id1])
	}
	if got[id2] != flat(after)[id2] {
		t.Errorf("report %d = %v; the unit's UPDATE was rolled back and should leave %v", id2, got[id2], flat(after)[id2])
	}
}

// TestUnitOnViewKeepsItsShards guards issue 11 item 1: a unit begun on a
// Using view keeps the view's routing. A statement of the unit pinned by
// SetShardID to another shard, a write of an object there, and DB of
// another shard are refused with ErrInvalidArgument naming the shard and
// the model, and send nothing; on the view's shard they run.
func TestUnitOnViewKeepsItsShards(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 12))
	u := s.Using("asia").Begin()
	defer u.Rollback(ctx)

	f.reset()
	_, err := u.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 0").Where("TRUE").
		Options(session.SetShardID("europe")).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("update pinned to europe in an asia unit = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "europe", "Report", "Using view of [asia]")
	_, err = u.NewDelete().Model((*weather.Location)(nil)).Where("TRUE").
		Options(session.SetShardIDs("asia", "europe")).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("delete pinned to asia+europe in an asia unit = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "europe", "Location")
	var reps []*weather.Report
	err = u.NewSelect().Model(&reps).Options(session.SetShardID("europe")).Scan(ctx)
	wantIn(t, err, "europe", "Report")
	_, err = u.DB(ctx, "europe")
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("DB(europe) in an asia unit = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "europe")
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("refused statements ran %v statements per shard; want none", got)
	}

	// On the view's own shard they run, in the unit.
	res, err := u.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = -500").Where("TRUE").Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ByShard) != 1 || res.ByShard["asia"] == 0 {
		t.Errorf("update in the asia unit = %+v; want rows on asia only", res)
	}
	if err := u.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for id, rows := range temps(t, f) {
		for rid, temp := range rows {
			if (temp == -500) != (id == "asia") {
				t.Errorf("report %d on %s has temperature %v after the asia unit committed", rid, id, temp)
			}
			if temp == -500 {
				changed++
			}
		}
	}
	if int64(changed) != res.ByShard["asia"] {
		t.Errorf("%d reports hold the unit's temperature after Commit; want the %d it updated", changed, res.ByShard["asia"])
	}
}

// TestUnitOnMultiShardView: a unit begun on a view of two shards reads those
// shards (its selects autoflush an empty unit, which writes nothing), and a
// flush that has objects to write is refused, since a write of objects needs
// one shard; nothing is sent to the other shards.
func TestUnitOnMultiShardView(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 12))
	u := s.Using("asia", "europe").Begin()
	defer u.Rollback(ctx)

	f.reset()
	var locs []*weather.Location
	if err := u.NewSelect().Model(&locs).Order("id").Scan(ctx); err != nil {
		t.Fatalf("select in a unit on [asia europe]: %v", err)
	}
	for _, l := range locs {
		if l.Continent != "Asia" && l.Continent != "Europe" {
			t.Errorf("select in a unit on [asia europe] returned %s's location %d", l.Continent, l.ID)
		}
	}
	if len(locs) != 4 {
		t.Errorf("select in a unit on [asia europe] returned %d locations; want 4", len(locs))
	}
	if got := f.perShard(); got[0] != 0 || got[3] != 0 || got[1] == 0 || got[2] == 0 {
		t.Errorf("select ran %v statements per shard; want some on asia and europe only", got)
	}
	if err := u.Flush(ctx); err != nil {
		t.Errorf("Flush with nothing pending = %v; want nil", err)
	}
	f.reset()
	if err := u.Add(&weather.Location{ID: 900, Continent: "Asia", City: "Osaka"}); err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(ctx); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Flush of a new object in a unit on [asia europe] = %v; want ErrInvalidArgument", err)
	}
	if got := f.perShard(); got[0] != 0 || got[3] != 0 {
		t.Errorf("refused flush ran %v statements per shard; want none outside the view", got)
	}
}
