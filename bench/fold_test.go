package bench

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/merge"
	"github.com/bunshard/bunshard/session"
)

// FReport is weather.Report on the table-per-shard layout (no relation):
// each logical shard's table carries its prefix.
type FReport struct {
	bun.BaseModel `bun:"table:?(prefix)weather_reports"`
	identity.Token

	ID          int64     `bun:",pk"`
	LocationID  int64     `bun:",notnull"`
	Temperature float64   `bun:",notnull"`
	ReportTime  time.Time `bun:",notnull"`
}

// FLocation is weather.Location on the table-per-shard layout, with its
// reports (W6).
type FLocation struct {
	bun.BaseModel `bun:"table:?(prefix)weather_locations"`
	identity.Token

	ID        int64      `bun:",pk"`
	Continent string     `bun:",notnull"`
	City      string     `bun:",notnull"`
	Reports   []*FReport `bun:"rel:has-many,join:id=location_id"`
}

// foldEnv is n logical shards, table per shard, on the set's servers: one
// database and one *bun.DB (pool) per server, each shard a WithNamedArg
// clone with its prefix, holding the BENCH.md locations spread round-robin
// and each location's reports on its shard (W6 loads them from there).
type foldEnv struct {
	n      int
	shards []*bun.DB // logical shards, in id order
	ids    []session.ShardID
	folded *session.Session
	plain  *session.Session
	pools  []*bun.DB
}

var (
	foldMu   sync.Mutex
	foldEnvs = map[int]*foldEnv{}
)

// foldLoad builds (once per process and n) the n-shard layout.
func foldLoad(b testing.TB, n int) *foldEnv {
	b.Helper()
	foldMu.Lock()
	defer foldMu.Unlock()
	if e := foldEnvs[n]; e != nil {
		return e
	}
	ctx := context.Background()
	set := pgtest.Shared()
	dialect := pgdialect.New()
	e := &foldEnv{n: n}
	for i := range set.Len() {
		srv := set.Server(i)
		name := fmt.Sprintf("benchfold_%d_%d", n, i)
		_ = srv.DropDatabase(ctx, name)
		if err := srv.CreateDatabase(ctx, name); err != nil {
			b.Fatal(err)
		}
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(srv.DSN(name)))), dialect)
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		e.pools = append(e.pools, db)
	}
	data := weather.Generate(nLocations, perLoc, 42)
	rows := make([][]FReport, n)
	for _, r := range data.Reports {
		i := int(r.LocationID-1) % n
		rows[i] = append(rows[i], FReport{ID: r.ID, LocationID: r.LocationID, Temperature: r.Temperature, ReportTime: r.ReportTime})
	}
	locs := make([][]FLocation, n)
	for _, l := range data.Locations {
		i := int(l.ID-1) % n
		locs[i] = append(locs[i], FLocation{ID: l.ID, Continent: l.Continent, City: l.City})
	}
	shards := map[session.ShardID]bun.IDB{}
	m := map[int64]session.ShardID{}
	for i := range n {
		id := session.ShardID(fmt.Sprintf("p%02d", i))
		db := e.pools[i%len(e.pools)].WithNamedArg("prefix", bun.Safe(string(id)+"_"))
		for _, m := range []any{(*FReport)(nil), (*FLocation)(nil)} {
			if _, err := db.NewCreateTable().Model(m).Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if len(locs[i]) > 0 {
			if _, err := db.NewInsert().Model(&locs[i]).Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for lo := 0; lo < len(rows[i]); lo += 5000 {
			chunk := rows[i][lo:min(lo+5000, len(rows[i]))]
			if _, err := db.NewInsert().Model(&chunk).Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		e.shards = append(e.shards, db)
		e.ids = append(e.ids, id)
		shards[id] = db
		m[int64(i)] = id
	}
	for _, db := range e.pools {
		if _, err := db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	vm := chooser.NewValueMap("location_id", m) // no statement here names the key: every shard
	var err error
	if e.folded, err = session.New(shards, vm, chooser.All, vm, session.WithFolding()); err != nil {
		b.Fatal(err)
	}
	if e.plain, err = session.New(shards, vm, chooser.All, vm); err != nil {
		b.Fatal(err)
	}
	foldEnvs[n] = e
	return e
}

// closeFoldEnvs closes the benchmarks' pools, at the end of the process.
func closeFoldEnvs() {
	for _, e := range foldEnvs {
		for _, db := range e.pools {
			db.Close()
		}
	}
}

// The workloads, shard counts and sides BenchmarkFold runs.
var (
	foldWorkloads = []string{"W3", "W4", "W6", "W7"}
	foldShards    = []int{4, 16, 64}
	foldSides     = []string{"folded", "unfolded", "bun"}
)

// BenchmarkFold runs W3, W4, W6 and W7 at 4, 16 and 64 logical shards on the
// set's servers (table per shard): bunshard with WithFolding (one
// statement per server), bunshard without it, and hand-written Bun with
// one statement per shard (an errgroup, merged by hand).
//
// Each iteration is one round that runs every workload at every shard
// count on all three sides back to back (the sides' order rotating from
// round to round), so the sides of one cell meet the same machine. It
// prints every round's time per cell ("fold W3 shards=4 folded ms: [...]")
// and a table of the medians, and reports per workload the median over
// rounds of folded time at the most shards over folded time at the fewest
// (metric "<W>-growth"). bench/report turns the output into the README's
// table and docs/shards.svg:
//
//	go test -run '^$' -bench BenchmarkFold -benchtime 5x ./bench | tee fold.txt
//	go run ./bench/report -shards-svg docs/shards.svg < fold.txt
func BenchmarkFold(b *testing.B) {
	type cell struct {
		w    string
		n    int
		side string
		run  func() error
		ms   []float64 // per round
	}
	var cells []*cell
	for _, w := range foldWorkloads {
		for _, n := range foldShards {
			e := foldLoad(b, n)
			for _, side := range foldSides {
				run := e.workload(b, w, side)
				if err := run(); err != nil { // warm: the folded session asks its shards once
					b.Fatal(err)
				}
				cells = append(cells, &cell{w: w, n: n, side: side, run: run})
			}
		}
	}
	round := 0
	for b.Loop() {
		for i := 0; i < len(cells); i += len(foldSides) {
			group := cells[i : i+len(foldSides)]
			for k := range group {
				c := group[(k+round)%len(group)]
				start := time.Now()
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				c.ms = append(c.ms, float64(time.Since(start))/1e6)
			}
		}
		round++
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%-8s %6s", "workload", "shards")
	for _, side := range foldSides {
		fmt.Fprintf(&out, " %12s", side+" ms")
	}
	fmt.Fprintf(&out, "  (medians of %d rounds)\n", round)
	for i := 0; i < len(cells); i += len(foldSides) {
		fmt.Fprintf(&out, "%-8s %6d", cells[i].w, cells[i].n)
		for _, c := range cells[i : i+len(foldSides)] {
			fmt.Fprintf(&out, " %12.3f", median(c.ms))
			fmt.Printf("fold %s shards=%d %s ms: %.3f\n", c.w, c.n, c.side, c.ms)
		}
		out.WriteString("\n")
	}
	for _, w := range foldWorkloads {
		var lo, hi []float64
		for _, c := range cells {
			if c.w == w && c.side == foldSides[0] {
				if c.n == foldShards[0] {
					lo = c.ms
				}
				if c.n == foldShards[len(foldShards)-1] {
					hi = c.ms
				}
			}
		}
		growth := make([]float64, len(lo))
		for r := range lo {
			growth[r] = hi[r] / lo[r]
		}
		b.ReportMetric(median(growth), w+"-growth")
	}
	// Printed, not logged: the testing package cuts benchmark logs at ten lines.
	fmt.Print(out.String())
}

// workload returns one run of w on side, checking its result.
func (e *foldEnv) workload(b testing.TB, w, side string) func() error {
	total := nLocations * perLoc
	s := e.folded
	if side == "unfolded" {
		s = e.plain
	}
	hand := side == "bun"
	switch w {
	case "W3":
		if hand {
			return func() error {
				parts := make([][]FReport, len(e.shards))
				g, ctx := errgroup.WithContext(ctx)
				for i, db := range e.shards {
					g.Go(func() error { return db.NewSelect().Model(&parts[i]).Scan(ctx) })
				}
				if err := g.Wait(); err != nil {
					return err
				}
				n := 0
				for _, p := range parts {
					n += len(p)
				}
				reps := make([]FReport, 0, n)
				for _, p := range parts {
					reps = append(reps, p...)
				}
				return wantLen("reports", len(reps), total)
			}
		}
		return func() error {
			var reps []FReport
			if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
				return err
			}
			return wantLen("reports", len(reps), total)
		}
	case "W4":
		check := func(top []FReport) error {
			if err := wantLen("reports", len(top), 100); err != nil {
				return err
			}
			for i := 1; i < len(top); i++ {
				if top[i-1].Temperature < top[i].Temperature {
					return fmt.Errorf("W4: row %d out of order", i)
				}
			}
			return nil
		}
		if hand {
			return func() error {
				parts := make([][]FReport, len(e.shards))
				g, ctx := errgroup.WithContext(ctx)
				for i, db := range e.shards {
					g.Go(func() error {
						return db.NewSelect().Model(&parts[i]).OrderExpr("temperature DESC, id").Limit(100).Scan(ctx)
					})
				}
				if err := g.Wait(); err != nil {
					return err
				}
				return check(merge.Slices(parts, func(a, b FReport) int {
					if c := cmp.Compare(b.Temperature, a.Temperature); c != 0 {
						return c
					}
					return cmp.Compare(a.ID, b.ID)
				}, 0, 100))
			}
		}
		return func() error {
			var top []FReport
			if err := s.NewSelect().Model(&top).Order("temperature DESC", "id").Limit(100).Scan(ctx); err != nil {
				return err
			}
			return check(top)
		}
	case "W6":
		const want = 500 * perLoc
		if hand {
			return func() error {
				parts := make([][]*FLocation, len(e.shards))
				g, ctx := errgroup.WithContext(ctx)
				for i, db := range e.shards {
					g.Go(func() error {
						var locs []*FLocation
						if err := db.NewSelect().Model(&locs).Where("id <= ?", 500).Scan(ctx); err != nil {
							return err
						}
						if len(locs) == 0 {
							return nil
						}
						ids := make([]int64, len(locs))
						byID := make(map[int64]*FLocation, len(locs))
						for j, l := range locs {
							ids[j] = l.ID
							byID[l.ID] = l
						}
						var reps []*FReport
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
				n := 0
				for _, p := range parts {
					for _, l := range p {
						n += len(l.Reports)
					}
				}
				return wantLen("reports", n, want)
			}
		}
		return func() error {
			var locs []*FLocation
			if err := s.NewSelect().Model(&locs).Where("id <= ?", 500).Scan(ctx); err != nil {
				return err
			}
			if err := s.LoadRelation(ctx, &locs, "Reports"); err != nil {
				return err
			}
			if err := wantLen("locations", len(locs), 500); err != nil {
				return err
			}
			n := 0
			for _, l := range locs {
				n += len(l.Reports)
			}
			return wantLen("reports", n, want)
		}
	case "W7":
		if hand {
			return func() error {
				counts := make([]int64, len(e.shards))
				g, ctx := errgroup.WithContext(ctx)
				for i, db := range e.shards {
					g.Go(func() (err error) {
						n, err := db.NewSelect().Model((*FReport)(nil)).Count(ctx)
						counts[i] = int64(n)
						return err
					})
				}
				if err := g.Wait(); err != nil {
					return err
				}
				var n int64
				for _, c := range counts {
					n += c
				}
				return wantLen("count", int(n), total)
			}
		}
		return func() error {
			n, err := s.NewSelect().Model((*FReport)(nil)).Count(ctx)
			if err != nil {
				return err
			}
			return wantLen("count", n, total)
		}
	}
	b.Fatalf("unknown workload %s", w)
	return nil
}
