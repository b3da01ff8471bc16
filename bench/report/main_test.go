package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sample = `W1 rounds: [1.020 1.100 0.990]
goos: linux

workload a               a ms b               b ms      a/b  cpu a/b  (medians of 3 paired rounds)
W1       bunshard     143.000 bun          136.000    1.020    1.050
WMany    getmany        6.984 gets        1666.877    0.005    0.020
goos: linux
BenchmarkRatios-2   	      3	 1 ns/op
`

// TestParse reads BenchmarkRatios' table and round lines into rows, and
// renders them as the README's table with the spread.
func TestParse(t *testing.T) {
	rows, n, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(rows) != 2 {
		t.Fatalf("parse = %d rows, %d rounds; want 2, 3", len(rows), n)
	}
	r := rows[0]
	if r.name != "W1" || r.a != "bunshard" || r.b != "bun" || r.aMS != 143 || r.bMS != 136 || r.ratio != 1.02 || r.cpu != 1.05 || len(r.rounds) != 3 {
		t.Errorf("rows[0] = %+v", r)
	}
	md := markdown(rows, n)
	for _, want := range []string{"| W1 | bunshard | 143 | bun | 136 | 1.020 | 0.990–1.100 | 1.050 |", "| WMany | getmany | 6.98 | gets | 1667 | 0.005 | n/a | 0.020 |", "3 paired rounds"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if s := svg(rows, "t"); !strings.Contains(s, "<svg") || strings.Count(s, "<rect") != 3 {
		t.Errorf("svg has %d rects; want a background and 2 bars", strings.Count(s, "<rect"))
	}
	if _, _, err := parse(strings.NewReader("PASS\n")); err == nil {
		t.Error("parse of output without a table = nil error; want one")
	}
}

const foldSample = `goos: linux
fold W3 shards=4 folded ms: [10.000 12.000 11.000]
fold W3 shards=4 unfolded ms: [10.000 12.000 13.000]
fold W3 shards=4 bun ms: [10.000 10.000 10.000]
fold W3 shards=64 folded ms: [30.000 24.000 33.000]
fold W3 shards=64 unfolded ms: [40.000 40.000 40.000]
fold W3 shards=64 bun ms: [20.000 20.000 20.000]
fold W7 shards=4 folded ms: [2.000 2.000 2.000]
fold W7 shards=4 unfolded ms: [2.000 2.000 2.000]
fold W7 shards=4 bun ms: [2.000 2.000 2.000]
fold W7 shards=64 folded ms: [3.000 3.000 3.000]
fold W7 shards=64 unfolded ms: [9.000 9.000 9.000]
fold W7 shards=64 bun ms: [8.000 8.000 8.000]
fold W6new shards=4 folded ms: [1.000 1.000 1.000]
fold W6new shards=4 bun ms: [1.000 2.000 4.000]
fold W6new shards=64 folded ms: [1.000 1.000 1.000]
fold W6new shards=64 bun ms: [2.000 2.000 2.000]

workload shards    folded ms  unfolded ms       bun ms  (medians of 3 rounds)
W3            4       11.000       12.000       10.000
BenchmarkFold-2   	       3	 1 ns/op	 1.5 W3-growth
BenchmarkFold/W3/shards=4/folded-2   1   99000000 ns/op
`

// TestFold reads BenchmarkFold's round lines, whatever the workloads are
// called, and renders the tables: medians, per-round ratios to Bun by hand
// with their spread, growth from the fewest to the most shards, and the
// issue's W7 target.
func TestFold(t *testing.T) {
	d, ok, err := parseFold(strings.NewReader(foldSample))
	if err != nil || !ok {
		t.Fatalf("parseFold = %v, %v", ok, err)
	}
	if !d.rounds || !slices.Equal(d.workloads, []string{"W3", "W7", "W6new"}) || !slices.Equal(d.shards, []int{4, 64}) ||
		!slices.Equal(d.sides, []string{"folded", "unfolded", "bun"}) {
		t.Fatalf("parseFold = %+v", d)
	}
	md := foldMarkdown(d)
	for _, want := range []string{
		"| workload | shards | bunshard folded ms | bunshard unfolded ms | Bun by hand ms | bunshard folded / Bun by hand | spread | bunshard unfolded / Bun by hand | spread |",
		"| W3 | 4 | 11.0 | 12.0 | 10.0 | 1.10 | 1.00–1.20 | 1.20 | 1.00–1.30 |",
		"| W3 | 64 | 30.0 | 40.0 | 20.0 | 1.50 | 1.20–1.65 | 2.00 | 2.00–2.00 |",
		"| W7 | 64 | 3.00 | 9.00 | 8.00 | 0.38 | 0.38–0.38 | 1.12 | 1.12–1.12 |",
		// W6new has no unfolded side: dashes, not zeros.
		"| W6new | 4 | 1.00 | – | 2.00 | 0.50 | 0.25–1.00 | – | – |",
		"| W3 | 3.00× | 2.00–3.00 | 3.33× | 3.08–4.00 | 2.00× | 2.00–2.00 |",
		"| W7 | 1.50× | 1.50–1.50 | 4.50× | 4.50–4.50 | 4.00× | 4.00–4.00 |",
		"Medians of 3 rounds",
		"64-shard W7 within 2× of 4-shard W7 (folded): 1.50×, met.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	s := foldSVG(d, "t")
	// One line per side per workload, except W6new's missing unfolded one.
	if n := strings.Count(s, "<polyline"); n != 8 {
		t.Errorf("svg has %d lines; want 8:\n%s", n, s)
	}
	if n := strings.Count(s, "<circle"); n != 16 {
		t.Errorf("svg has %d points; want 16", n)
	}
	for _, want := range []string{">W3<", ">W6new<", ">Bun by hand<", ">64<", `stroke-dasharray="5 3"`} {
		if !strings.Contains(s, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
}

// TestFoldBenchLines reads the plain benchmark lines of a BenchmarkFold
// without round lines (-count runs: one sample per line).
func TestFoldBenchLines(t *testing.T) {
	in := `BenchmarkFold/W3/shards=4/folded-2         	       1	 12000000 ns/op
BenchmarkFold/W3/shards=4/bun-2            	       1	 10000000 ns/op
BenchmarkFold/W3/shards=16/folded          	       1	 30000000 ns/op	   5 B/op
BenchmarkFold/W3/shards=16/bun             	       1	 20000000 ns/op
BenchmarkFold/W3/shards=4/folded-2         	       1	 14000000 ns/op
BenchmarkFold/W3/shards=4/bun-2            	       1	 10000000 ns/op
BenchmarkFold/W3/shards=x/bun-2            	       1	 10000000 ns/op
PASS
`
	d, ok, err := parseFold(strings.NewReader(in))
	if err != nil || !ok {
		t.Fatalf("parseFold = %v, %v", ok, err)
	}
	if d.rounds || !slices.Equal(d.shards, []int{4, 16}) || !slices.Equal(d.sides, []string{"folded", "bun"}) ||
		!slices.Equal(d.ms[foldKey{"W3", 4, "folded"}], []float64{12, 14}) {
		t.Fatalf("parseFold = %+v", d)
	}
	md := foldMarkdown(d)
	for _, want := range []string{"| W3 | 4 | 13.0 | 10.0 | 1.30 | 1.20–1.40 |", "| W3 | 16 | 30.0 | 20.0 | 1.50 | n/a |", "not paired rounds"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Issue 13") {
		t.Errorf("markdown states the W7 target without W7 at 4 and 64 shards:\n%s", md)
	}
}

// TestRun: one input may hold both benchmarks; a chart asked of data the
// input lacks is an error naming the flag, as is input with neither.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	ratios, shards := filepath.Join(dir, "r.svg"), filepath.Join(dir, "s.svg")
	if err := run(strings.NewReader(sample+foldSample), &out, ratios, "t", shards, "t"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| W1 | bunshard |") || !strings.Contains(out.String(), "| W3 | 4 | 11.0 |") {
		t.Errorf("output lacks a table:\n%s", out.String())
	}
	for _, p := range []string{ratios, shards} {
		if b, err := os.ReadFile(p); err != nil || !strings.HasPrefix(string(b), "<svg") {
			t.Errorf("%s: %v %.20q", p, err, b)
		}
	}
	if err := run(strings.NewReader(foldSample), io.Discard, ratios, "t", "", ""); err == nil || !strings.Contains(err.Error(), "-svg") {
		t.Errorf("-svg without BenchmarkRatios output: err = %v; want one naming -svg", err)
	}
	if err := run(strings.NewReader(sample), io.Discard, "", "", shards, "t"); err == nil || !strings.Contains(err.Error(), "-shards-svg") {
		t.Errorf("-shards-svg without BenchmarkFold output: err = %v; want one naming -shards-svg", err)
	}
	if err := run(strings.NewReader("PASS\n"), io.Discard, "", "", "", ""); err == nil {
		t.Error("input with neither benchmark: err = nil; want one")
	}
	if err := run(strings.NewReader("fold W3 shards=4 bun ms: [1.0 x]\n"), io.Discard, "", "", "", ""); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("a bad round time: err = %v; want one naming it", err)
	}
}
