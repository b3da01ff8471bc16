// Command report turns benchmark output into the README's performance
// tables (Markdown, on stdout) and SVG charts in docs/.
//
// The output of BenchmarkRatios gives the table of ratios per workload and,
// with -svg, a chart of them:
//
//	BUNSHARD_RATIOS_ALL=1 go test -run '^$' -bench Ratios -benchtime 9x ./bench | tee ratios.txt
//	go run ./bench/report -svg docs/ratios.svg < ratios.txt
//
// It reads the table BenchmarkRatios prints (workload, labels, median times,
// median ratio, median CPU ratio) and, when present (BUNSHARD_RATIOS_ALL=1),
// every round's ratio, from which it gives the spread (lowest and highest
// round).
//
// The output of BenchmarkFold gives the tables of cost against shard count
// (per workload and shard count, each side's median time and its ratio to
// hand-written Bun; per workload, the time at the most shards over the time
// at the fewest) and, with -shards-svg, a chart of time against shard count
// per workload:
//
//	go test -run '^$' -bench BenchmarkFold -benchtime 5x ./bench | tee fold.txt
//	go run ./bench/report -shards-svg docs/shards.svg < fold.txt
//
// One input may hold both. Lines it does not recognise are ignored; input
// with neither, or a chart asked of data the input lacks, is an error.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// row is one workload of the table.
type row struct {
	name       string
	a, b       string
	aMS, bMS   float64
	ratio, cpu float64
	rounds     []float64 // every round's ratio, if printed
}

func main() {
	svgPath := flag.String("svg", "", "write the chart to this file (e.g. docs/ratios.svg)")
	shardsPath := flag.String("shards-svg", "", "write the chart of time against shard count (BenchmarkFold) to this file (e.g. docs/shards.svg)")
	title := flag.String("title", "bunshard / hand-written, median of paired rounds", "the ratio chart's title")
	shardsTitle := flag.String("shards-title", "time against logical shards on 4 servers, median of rounds", "the shard chart's title")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *svgPath, *title, *shardsPath, *shardsTitle); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// run reads benchmark output from in, writes the tables it finds to out
// and the charts asked for to their files.
func run(in io.Reader, out io.Writer, svgPath, title, shardsPath, shardsTitle string) error {
	text, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	rows, nRounds, ratioErr := parse(bytes.NewReader(text))
	fold, haveFold, err := parseFold(bytes.NewReader(text))
	if err != nil {
		return err
	}
	if ratioErr != nil && !haveFold {
		return fmt.Errorf("%w, nor BenchmarkFold output (go test -run '^$' -bench BenchmarkFold ./bench)", ratioErr)
	}
	if ratioErr == nil {
		fmt.Fprint(out, markdown(rows, nRounds))
	}
	if haveFold {
		if ratioErr == nil {
			fmt.Fprintln(out)
		}
		fmt.Fprint(out, foldMarkdown(fold))
	}
	if svgPath != "" {
		if ratioErr != nil {
			return fmt.Errorf("-svg %s: %w", svgPath, ratioErr)
		}
		if err := os.WriteFile(svgPath, []byte(svg(rows, title)), 0o644); err != nil {
			return err
		}
	}
	if shardsPath != "" {
		if !haveFold {
			return fmt.Errorf("-shards-svg %s: no BenchmarkFold output in the input (go test -run '^$' -bench BenchmarkFold ./bench)", shardsPath)
		}
		if err := os.WriteFile(shardsPath, []byte(foldSVG(fold, shardsTitle)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// parse reads BenchmarkRatios output: the table after its header line, and
// "<name> rounds: [r1 r2 ...]" lines.
func parse(r io.Reader) ([]row, int, error) {
	var rows []row
	rounds := map[string][]float64{}
	nRounds := 0
	inTable := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, list, ok := strings.Cut(line, " rounds: ["); ok {
			for _, f := range strings.Fields(strings.TrimSuffix(list, "]")) {
				if x, err := strconv.ParseFloat(f, 64); err == nil {
					rounds[name] = append(rounds[name], x)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "workload ") && strings.Contains(line, "a/b") {
			inTable = true
			if i := strings.Index(line, "(medians of "); i >= 0 {
				fmt.Sscanf(line[i:], "(medians of %d", &nRounds)
			}
			continue
		}
		if !inTable {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 7 {
			inTable = false
			continue
		}
		var nums [4]float64
		ok := true
		for i, j := range []int{2, 4, 5, 6} {
			x, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				ok = false
				break
			}
			nums[i] = x
		}
		if !ok {
			inTable = false
			continue
		}
		rows = append(rows, row{name: f[0], a: f[1], aMS: nums[0], b: f[3], bMS: nums[1], ratio: nums[2], cpu: nums[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	if len(rows) == 0 {
		return nil, 0, fmt.Errorf("no BenchmarkRatios table in the input (run go test -run '^$' -bench Ratios ./bench)")
	}
	for i := range rows {
		rows[i].rounds = rounds[rows[i].name]
	}
	return rows, nRounds, nil
}

// markdown renders the rows as the README's table.
func markdown(rows []row, nRounds int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| workload | a | a ms | b | b ms | a / b | spread | cpu a / b |\n|---|---|---:|---|---:|---:|---|---:|\n")
	for _, r := range rows {
		spread := "n/a"
		if len(r.rounds) > 0 {
			spread = fmt.Sprintf("%.3f–%.3f", slices.Min(r.rounds), slices.Max(r.rounds))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.3f | %s | %.3f |\n", r.name, r.a, ms(r.aMS), r.b, ms(r.bMS), r.ratio, spread, r.cpu)
	}
	if nRounds > 0 {
		fmt.Fprintf(&b, "\nMedians of %d paired rounds in one process; spread: lowest and highest round's ratio.\n", nRounds)
	}
	return b.String()
}

func ms(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// svg draws one horizontal bar per workload: the median ratio on a log
// scale, a whisker for the spread, and a line at 1 (parity).
func svg(rows []row, title string) string {
	const right, top, barH, gap = 60.0, 40.0, 16.0, 8.0
	left := 120.0 // wide enough for the longest label, at about 7 px a character
	for _, r := range rows {
		left = math.Max(left, 16+7*float64(len(label(r))))
	}
	width := left + 560
	lo, hi := 1.0, 1.0
	for _, r := range rows {
		lo, hi = math.Min(lo, r.ratio), math.Max(hi, r.ratio)
		for _, x := range r.rounds {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo)*2)/2), math.Pow(10, math.Ceil(math.Log10(hi)*2)/2)
	if hi <= lo {
		hi = lo * 10
	}
	plotW := width - left - right
	x := func(v float64) float64 {
		return left + plotW*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	height := top + float64(len(rows))*(barH+gap) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14">%s</text>`+"\n", left, esc(title))
	for _, t := range ticks(lo, hi) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", x(t), top-6, x(t), height-34)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n", x(t), height-20, strconv.FormatFloat(t, 'g', 3, 64)+"×")
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#333" stroke-dasharray="4 3"/>`+"\n", x(1), top-6, x(1), height-34)
	for i, r := range rows {
		y := top + float64(i)*(barH+gap)
		color := "#4c78a8"
		if r.ratio > 1.05 {
			color = "#e45756"
		}
		x0, x1 := math.Min(x(1), x(r.ratio)), math.Max(x(1), x(r.ratio))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y+barH-4, esc(label(r)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>`+"\n", x0, y, math.Max(x1-x0, 1), barH, color)
		if len(r.rounds) > 0 {
			a, c := x(slices.Min(r.rounds)), x(slices.Max(r.rounds))
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222"/>`+"\n", a, y+barH/2, c, y+barH/2)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%.3f</text>`+"\n", math.Max(x1, x(hi)-40)+4, y+barH-4, r.ratio)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func label(r row) string { return r.name + " (" + r.a + " / " + r.b + ")" }

// ticks are the powers of ten and their halves (1, 2, 5) between lo and hi.
func ticks(lo, hi float64) []float64 {
	var out []float64
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			if t := m * math.Pow(10, e); t >= lo*0.999 && t <= hi*1.001 {
				out = append(out, t)
			}
		}
	}
	return out
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
