package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// w5Base is the first id of the reports W5 inserts (and deletes after each
// run, so that every run, and every other workload, sees the same 100,000
// reports).
const w5Base = 1_000_000_000

// w5Reports returns the 10,000 new reports of W5, interleaved over the
// shards: report i belongs to location i mod 2,000.
func (e *env) w5Reports() []*weather.Report {
	reps := make([]*weather.Report, 10_000)
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range reps {
		loc := e.data.Locations[i%len(e.data.Locations)]
		reps[i] = &weather.Report{ID: int64(w5Base + i), LocationID: loc.ID, Location: loc,
			Temperature: float64(i%600-200) / 10, ReportTime: t0.Add(time.Duration(i) * time.Second)}
	}
	return reps
}

// w5Clean deletes what a run of W5 inserted.
func (e *env) w5Clean(b testing.TB) {
	var g errgroup.Group
	for _, db := range e.dbs {
		g.Go(func() error {
			_, err := db.NewDelete().Table("weather_reports").Where("id >= ?", w5Base).Exec(context.Background())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// w5Digest digests what a run of W5 stored: each new report with the
// index of the shard it is on, as a multiset. Read after the timed run and
// before w5Clean.
func (e *env) w5Digest() (uint64, error) {
	type placed struct {
		shard int
		r     *weather.Report
	}
	var all []placed
	for i, db := range e.dbs {
		var reps []*weather.Report
		if err := db.NewSelect().Model(&reps).Where("id >= ?", w5Base).Scan(context.Background()); err != nil {
			return 0, err
		}
		for _, r := range reps {
			all = append(all, placed{i, r})
		}
	}
	if err := wantLen("stored reports", len(all), 10_000); err != nil {
		return 0, err
	}
	return unordered(all, func(b []byte, p placed) []byte { return encReport(appendInt(b, int64(p.shard)), p.r) }), nil
}

// w5Vacuum removes the dead rows W5 left, so that later workloads scan what
// they scanned before.
func (e *env) w5Vacuum(b testing.TB) {
	for _, db := range e.dbs {
		if _, err := db.ExecContext(context.Background(), "VACUUM ANALYZE weather_reports"); err != nil {
			b.Fatal(err)
		}
	}
}

// W5: insert 10,000 new reports routed by their location's continent,
// committed: a unit of work flushes one INSERT per shard, 4 statements.
// SQLAlchemy's ShardedSession needs 7,468 for the same flush, because
// objects interleaved across shards break its batching
// (session.TestWorkloadStatementCounts asserts the 4). The hand-written
// Bun equivalent groups the reports by shard and inserts each group in its
// own transaction, the shards in parallel.
var w5 = workload{name: "W5", setup: func(b testing.TB, e *env) (side, side) { return w5Sides(b, e, false) },
	finish: func(b testing.TB, e *env) { e.w5Vacuum(b) }}

// W5p: W5 with an atomic two-phase commit: PREPARE TRANSACTION on every
// shard, the decision record on the coordinator, COMMIT PREPARED. The
// hand-written Bun equivalent prepares and commits each shard with no
// decision record (so it cannot recover from a crash between the phases).
var w5p = workload{name: "W5p", setup: func(b testing.TB, e *env) (side, side) { return w5Sides(b, e, true) },
	finish: func(b testing.TB, e *env) { e.w5Vacuum(b) }}

func w5Sides(b testing.TB, e *env, twoPhase bool) (side, side) {
	s := e.sessionWith(b, chooser.NewFollowParent(weather.ByContinent), chooser.All)
	var opts []session.UnitOption
	if twoPhase {
		opts = append(opts, session.TwoPhase())
	}
	var reps []*weather.Report
	prep := func() { reps = e.w5Reports() }
	clean := func() { e.w5Clean(b) }
	ours := func() error {
		uow := s.Begin(opts...)
		if err := uow.Add(&reps); err != nil {
			return err
		}
		return uow.Commit(ctx)
	}
	n := 0
	hand := func() error {
		n++
		parts := make([][]*weather.Report, len(e.dbs))
		for _, r := range reps {
			i := shardOfLocation(r.LocationID)
			parts[i] = append(parts[i], r)
		}
		if twoPhase {
			return handTwoPhase(ctx, e.dbs, parts, fmt.Sprintf("w5p_%d", n))
		}
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() error {
				return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := tx.NewInsert().Model(&parts[i]).Exec(ctx)
					return err
				})
			})
		}
		return g.Wait()
	}
	return side{prep: prep, run: ours, digest: e.w5Digest, clean: clean},
		side{prep: prep, run: hand, digest: e.w5Digest, clean: clean}
}

// handTwoPhase is what a Bun user writes for a two-phase insert: each shard
// inserts and prepares in parallel, then each commits the prepared
// transaction in parallel.
func handTwoPhase(ctx context.Context, dbs []*bun.DB, parts [][]*weather.Report, gid string) error {
	g, gctx := errgroup.WithContext(ctx)
	for i, db := range dbs {
		g.Go(func() error {
			tx, err := db.BeginTx(gctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.NewInsert().Model(&parts[i]).Exec(gctx); err != nil {
				_ = tx.Rollback()
				return err
			}
			if _, err := tx.ExecContext(gctx, "PREPARE TRANSACTION ?", fmt.Sprint(gid, "_", i)); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	for i, db := range dbs {
		g.Go(func() error {
			_, err := db.ExecContext(gctx, "COMMIT PREPARED ?", fmt.Sprint(gid, "_", i))
			return err
		})
	}
	return g.Wait()
}

// W6: 500 locations with all their reports (about 25,500 objects): a
// fan-out select of the locations, then the loader, one IN query per shard:
// 8 statements. SQLAlchemy needs 20, because selectin loading sends each
// shard's keys to every shard (session.TestWorkloadStatementCounts asserts
// the 8). The hand-written Bun equivalent runs, on each shard in parallel,
// the select and an IN query on its location ids, and assigns the reports
// by hand.
var w6 = workload{name: "W6", reps: 4, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	const want = 500 * perLoc
	var got, byHand []*weather.Location
	ours := func() error {
		var locs []*weather.Location
		if err := s.NewSelect().Model(&locs).Where("id <= ?", 500).Scan(ctx); err != nil {
			return err
		}
		if err := s.LoadRelation(ctx, &locs, "Reports"); err != nil {
			return err
		}
		got = locs
		return wantLen("reports", countReports(locs)+len(locs)-500, want)
	}
	hand := func() error {
		parts := make([][]*weather.Location, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() error {
				var locs []*weather.Location
				if err := db.NewSelect().Model(&locs).Where("id <= ?", 500).Scan(ctx); err != nil {
					return err
				}
				ids := make([]int64, len(locs))
				byID := make(map[int64]*weather.Location, len(locs))
				for j, l := range locs {
					ids[j] = l.ID
					byID[l.ID] = l
				}
				var reps []*weather.Report
				if err := db.NewSelect().Model(&reps).Where("location_id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
					return err
				}
				for _, r := range reps {
					l := byID[r.LocationID]
					l.Reports = append(l.Reports, r)
				}
				parts[i] = locs
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		var locs []*weather.Location
		for _, p := range parts {
			locs = append(locs, p...)
		}
		byHand = locs
		return wantLen("reports", countReports(locs)+len(locs)-500, want)
	}
	// The locations in any order, each with the multiset of its reports.
	return side{run: ours, digest: func() (uint64, error) { return unordered(got, encLocationTree), nil }},
		side{run: hand, digest: func() (uint64, error) { return unordered(byHand, encLocationTree), nil }}
}}

func countReports(locs []*weather.Location) int {
	n := 0
	for _, l := range locs {
		n += len(l.Reports)
	}
	return n
}
