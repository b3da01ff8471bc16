package bench

import (
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// The drivers compared: Bun over pgx's database/sql driver in each of its
// exec modes, each against Bun over pgdriver (the env's own handles), on
// the same databases:
//
//   - pgx: QueryExecModeCacheStatement, pgx's default (each new text
//     prepared and cached per connection, binary results);
//   - pgxdescribe: QueryExecModeCacheDescribe (each new text described,
//     the description cached, then run on the unnamed statement);
//   - pgxexec: QueryExecModeExec (the unnamed statement, one round trip,
//     no cache, binary results where the types are known);
//   - pgxsimple: QueryExecModeSimpleProtocol (one Query message, text
//     results).
var drivers = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"pgx", pgx.QueryExecModeCacheStatement},
	{"pgxdescribe", pgx.QueryExecModeCacheDescribe},
	{"pgxexec", pgx.QueryExecModeExec},
	{"pgxsimple", pgx.QueryExecModeSimpleProtocol},
}

// driverBases are the workloads measured over each driver: W1 (1,000
// gets), W3 (100k reports), W6 (500 locations with their reports) and
// WManyBun (W1's keys in one GetMany, against Bun by hand doing one IN
// per shard).
var driverBases = []workload{w1, w3, w6, wManyBun}

// driverWorkloads are the driverBases over each driver, by hand and
// through bunshard, each against the same over pgdriver. BenchmarkRatios
// runs them only when BUNSHARD_RATIOS names them (W1.pgx.bun,
// W3.pgxsimple.bunshard, WManyBun.pgxexec.bunshard, ...), so its default
// run stays as long as it was; TestDrivers runs each once.
var driverWorkloads = func() []workload {
	var out []workload
	for _, d := range drivers {
		for _, w := range driverBases {
			out = append(out, overDriver(w, d.name, d.mode, true), overDriver(w, d.name, d.mode, false))
		}
	}
	return out
}()

// TestDrivers runs both sides of every driver workload once, untimed, as
// TestWorkloads does for the others: each side's digest must match.
func TestDrivers(t *testing.T) {
	e := load(t)
	for _, w := range append(append(slices.Clone(driverWorkloads), pgxHandWorkloads...), scanWorkloads...) {
		t.Run(w.name, func(t *testing.T) {
			x, y := w.setup(t, e)
			sameDigest(t, w, 0, once(t, x), once(t, y))
			if w.finish != nil {
				w.finish(t, e)
			}
		})
	}
}

// BenchmarkDrivers runs the driver workloads as sub-benchmarks
// (BenchmarkDrivers/W3.pgxsimple.bun/bun/pgxsimple, ...), for profiles:
//
//	go test -run '^$' -bench 'Drivers/W3.pgxsimple.bun' -cpuprofile cpu.out ./bench
func BenchmarkDrivers(b *testing.B) {
	for _, w := range append(append(slices.Clone(driverWorkloads), pgxHandWorkloads...), scanWorkloads...) {
		b.Run(w.name, func(b *testing.B) { benchPair(b, w) })
	}
}

// overDriver is w with one side over the driver and the other over
// pgdriver: Bun by hand on both (hand) or bunshard on both.
func overDriver(w workload, name string, mode pgx.QueryExecMode, hand bool) workload {
	label, which := "bunshard", "bunshard"
	if hand {
		label, which = "bun", "bun"
	}
	return workload{
		name: w.name + "." + name + "." + which, reps: w.reps, a: label + "/" + name, b: label + "/pgdriver",
		setup: func(b testing.TB, e *env) (side, side) {
			oa, ob := w.setup(b, e.overPgx(b, name, mode))
			pa, pb := w.setup(b, e)
			if hand {
				return ob, pb
			}
			return oa, pa
		},
		finish: w.finish,
	}
}

var (
	pgxMu   sync.Mutex
	pgxEnvs = map[string]*env{}
)

// overPgx returns e with the same databases opened through pgx's
// database/sql driver in exec mode mode (once per process and mode).
func (e *env) overPgx(b testing.TB, name string, mode pgx.QueryExecMode) *env {
	pgxMu.Lock()
	defer pgxMu.Unlock()
	if ee, ok := pgxEnvs[name]; ok {
		return ee
	}
	dialect := pgdialect.New()
	ee := &env{byID: map[session.ShardID]*bun.DB{}, data: e.data, dsns: e.dsns}
	for i, id := range weather.Shards {
		cfg, err := pgx.ParseConfig(e.dsns[i])
		if err != nil {
			b.Fatal(fmt.Errorf("pgx.ParseConfig(%s): %w", e.dsns[i], err))
		}
		cfg.DefaultQueryExecMode = mode
		var sqldb *sql.DB = stdlib.OpenDB(*cfg)
		sqldb.SetMaxOpenConns(8)
		sqldb.SetMaxIdleConns(8)
		db := bun.NewDB(sqldb, dialect)
		weather.Register(db)
		ee.dbs = append(ee.dbs, db)
		ee.byID[id] = db
	}
	pgxEnvs[name] = ee
	return ee
}
