// Package bench measures bunshard against hand-written Bun doing the same
// work (one *bun.DB per shard, an errgroup fan-out, results merged by hand),
// on the workloads of BENCH.md: SQLAlchemy's weather data, 2,000 locations
// x 50 reports = 100,000 reports on 4 local PostgreSQL shards.
//
// Workloads: W1 (1,000 gets, shard known), W2 (1,000 gets, every shard
// asked), W2IDs (W2 with shard-encoded ids: one statement per get), W3 (all
// 100k reports), W4 (global top 100 by temperature), WGroup (reports per
// location with their mean temperature), W7 (count), and Page500 (page 500
// by OFFSET against the same page by keyset cursor).
//
// Each workload W has two sub-benchmarks, BenchmarkW/bunshard and
// BenchmarkW/bun; the number that matters is their ratio from one run:
//
//	go test -run '^$' -bench . -count 5 ./bench | go run ./internal/benchratio
//
// The servers are started by the harness (or taken from BUNSHARD_TEST_PG).
package bench
