package main

import (
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
