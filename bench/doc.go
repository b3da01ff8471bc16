// Package bench measures bunshard against hand-written Bun doing the same
// work (one *bun.DB per shard, an errgroup fan-out, results merged by hand),
// on the workloads of BENCH.md: SQLAlchemy's weather data, 2,000 locations
// x 50 reports = 100,000 reports on 4 local PostgreSQL shards.
//
// Workloads: W1 (1,000 gets, shard known), W2 (1,000 gets, every shard
// asked), W2IDs (W2 with shard-encoded ids: one statement per get), W3 (all
// 100k reports), W4 (global top 100 by temperature), WGroup (reports per
// location with their mean temperature), W5 and W5p (a unit of work
// flushing 10,000 new reports, one- and two-phase), W6 (500 locations and
// their reports through the loader), W7 (count), and Page500 (page 500 by
// keyset cursor against the same page by OFFSET).
//
// Each workload W has two sub-benchmarks, BenchmarkW/bunshard and
// BenchmarkW/bun. The number that matters is their ratio, and this machine
// drifts by ±15% between runs, so BenchmarkRatios runs the pairs back to
// back in rounds (alternating which goes first) and reports the median
// ratio of each workload, with a table of median times:
//
//	go test -run '^$' -bench Ratios -benchtime 15x ./bench
//
// The sub-benchmarks also work with benchratio, which compares medians of
// separate runs:
//
//	go test -run '^$' -bench . -count 5 ./bench | go run ./internal/benchratio
//
// The servers are started by the harness (or taken from BUNSHARD_TEST_PG).
package bench
