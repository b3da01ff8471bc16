package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// foldKey is one cell of BenchmarkFold: a workload at a shard count, on
// one side.
type foldKey struct {
	w    string
	n    int
	side string
}

// foldData is BenchmarkFold's output: the time of every round (or of every
// benchmark line, for output without round lines) per cell, in ms.
type foldData struct {
	workloads []string // in the order of the input
	shards    []int    // ascending
	sides     []string // in the order of the input
	ms        map[foldKey][]float64
	rounds    bool // from round lines; false: from "ns/op" benchmark lines
}

// base is the side the others are divided by: hand-written Bun ("bun")
// if present, else the last side.
func (d *foldData) base() string {
	if slices.Contains(d.sides, "bun") {
		return "bun"
	}
	return d.sides[len(d.sides)-1]
}

// parseFold reads BenchmarkFold output: its round lines
//
//	fold W3 shards=4 folded ms: [12.000 13.500]
//
// or, when there are none (output of an older BenchmarkFold, or -count
// runs of one), its benchmark lines
//
//	BenchmarkFold/W3/shards=4/folded-2   5   12000000 ns/op
//
// each taken as one sample. Workload and side names are whatever the
// input has. Other lines are ignored; ok is false when there is no cell.
func parseFold(r io.Reader) (*foldData, bool, error) {
	rounds := map[foldKey][]float64{}
	lines := map[foldKey][]float64{}
	var order []foldKey
	seen := map[foldKey]bool{}
	add := func(m map[foldKey][]float64, k foldKey, xs ...float64) {
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
		m[k] = append(m[k], xs...)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "fold "); ok {
			head, list, ok := strings.Cut(rest, " ms: [")
			f := strings.Fields(head)
			if !ok || len(f) != 3 {
				continue
			}
			n, ok := shardsOf(f[1])
			if !ok {
				continue
			}
			var xs []float64
			for _, s := range strings.Fields(strings.TrimSuffix(list, "]")) {
				x, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, false, fmt.Errorf("fold %s %s %s: round time %q: %v", f[0], f[1], f[2], s, err)
				}
				xs = append(xs, x)
			}
			add(rounds, foldKey{f[0], n, f[2]}, xs...)
			continue
		}
		if rest, ok := strings.CutPrefix(line, "BenchmarkFold/"); ok {
			f := strings.Fields(rest)
			if len(f) < 4 || f[3] != "ns/op" {
				continue
			}
			p := strings.Split(f[0], "/")
			if len(p) != 3 {
				continue
			}
			n, ok := shardsOf(p[1])
			if !ok {
				continue
			}
			side := p[2]
			if i := strings.LastIndexByte(side, '-'); i > 0 {
				if _, err := strconv.Atoi(side[i+1:]); err == nil {
					side = side[:i] // the GOMAXPROCS suffix
				}
			}
			x, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				continue
			}
			add(lines, foldKey{p[0], n, side}, x/1e6)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, err
	}
	d := &foldData{ms: rounds, rounds: true}
	if len(rounds) == 0 {
		d.ms, d.rounds = lines, false
	}
	if len(d.ms) == 0 {
		return nil, false, nil
	}
	for _, k := range order {
		if _, ok := d.ms[k]; !ok {
			continue
		}
		if !slices.Contains(d.workloads, k.w) {
			d.workloads = append(d.workloads, k.w)
		}
		if !slices.Contains(d.shards, k.n) {
			d.shards = append(d.shards, k.n)
		}
		if !slices.Contains(d.sides, k.side) {
			d.sides = append(d.sides, k.side)
		}
	}
	slices.Sort(d.shards)
	return d, true, nil
}

// shardsOf reads "shards=16".
func shardsOf(s string) (int, bool) {
	v, ok := strings.CutPrefix(s, "shards=")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n > 0
}

// stat is a median with the lowest and highest sample; ok is false when
// there is no sample.
type stat struct {
	med, lo, hi float64
	n           int
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	return stat{med: median(xs), lo: slices.Min(xs), hi: slices.Max(xs), n: len(xs)}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratios divides x by y sample by sample, over the samples both have
// (round r of one cell by round r of the other: they ran side by side).
func ratios(x, y []float64) []float64 {
	out := make([]float64, 0, min(len(x), len(y)))
	for i := range min(len(x), len(y)) {
		if y[i] > 0 {
			out = append(out, x[i]/y[i])
		}
	}
	return out
}

// growth is, per round, side's time at the most shards over its time at
// the fewest, for workload w.
func (d *foldData) growth(w, side string) []float64 {
	return ratios(d.ms[foldKey{w, d.shards[len(d.shards)-1], side}], d.ms[foldKey{w, d.shards[0], side}])
}

// sideName is how a side is shown.
func sideName(side string) string {
	switch side {
	case "folded":
		return "bunshard folded"
	case "unfolded":
		return "bunshard unfolded"
	case "bun":
		return "Bun by hand"
	}
	return side
}

func spread(s stat) string {
	if s.n < 2 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f–%.2f", s.lo, s.hi)
}

// foldMarkdown renders d as two tables: the median time per workload,
// shard count and side with each side's ratio to the base side; and per
// workload and side, the time at the most shards over the time at the
// fewest.
func foldMarkdown(d *foldData) string {
	var b strings.Builder
	base := d.base()
	others := slices.DeleteFunc(slices.Clone(d.sides), func(s string) bool { return s == base })
	b.WriteString("| workload | shards |")
	for _, s := range d.sides {
		fmt.Fprintf(&b, " %s ms |", sideName(s))
	}
	for _, s := range others {
		fmt.Fprintf(&b, " %s / %s | spread |", sideName(s), sideName(base))
	}
	b.WriteString("\n|---|---:|" + strings.Repeat("---:|", len(d.sides)) + strings.Repeat("---:|---|", len(others)) + "\n")
	for _, w := range d.workloads {
		for _, n := range d.shards {
			if !d.hasAny(w, n) {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d |", w, n)
			for _, s := range d.sides {
				if xs := d.ms[foldKey{w, n, s}]; len(xs) > 0 {
					fmt.Fprintf(&b, " %s |", ms(median(xs)))
				} else {
					b.WriteString(" – |")
				}
			}
			for _, s := range others {
				r := statOf(ratios(d.ms[foldKey{w, n, s}], d.ms[foldKey{w, n, base}]))
				if r.n == 0 {
					b.WriteString(" – | – |")
					continue
				}
				fmt.Fprintf(&b, " %.2f | %s |", r.med, spread(r))
			}
			b.WriteString("\n")
		}
	}
	if len(d.shards) > 1 {
		lo, hi := d.shards[0], d.shards[len(d.shards)-1]
		fmt.Fprintf(&b, "\n| workload |")
		for _, s := range d.sides {
			fmt.Fprintf(&b, " %s: %d / %d shards | spread |", sideName(s), hi, lo)
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|---|", len(d.sides)) + "\n")
		for _, w := range d.workloads {
			fmt.Fprintf(&b, "| %s |", w)
			for _, s := range d.sides {
				g := statOf(d.growth(w, s))
				if g.n == 0 {
					b.WriteString(" – | – |")
					continue
				}
				fmt.Fprintf(&b, " %.2f× | %s |", g.med, spread(g))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
	if d.rounds {
		n := 0
		for _, xs := range d.ms {
			n = max(n, len(xs))
		}
		fmt.Fprintf(&b, "Medians of %d rounds in one process (every cell's sides back to back in each round); "+
			"ratios are the median of the rounds' ratios, spread their lowest and highest.\n", n)
	} else {
		b.WriteString("From benchmark lines (one sample per line, each a mean over its iterations), not paired rounds.\n")
	}
	if g := statOf(d.growth("W7", "folded")); g.n > 0 && d.shards[0] == 4 && d.shards[len(d.shards)-1] == 64 {
		verdict := "met"
		if g.med > 2 {
			verdict = "missed"
		}
		fmt.Fprintf(&b, "Issue 13's target, 64-shard W7 within 2× of 4-shard W7 (folded): %.2f×, %s.\n", g.med, verdict)
	}
	return b.String()
}

func (d *foldData) hasAny(w string, n int) bool {
	for _, s := range d.sides {
		if len(d.ms[foldKey{w, n, s}]) > 0 {
			return true
		}
	}
	return false
}

// foldPalette colours the sides in order; the base side is drawn dashed.
var foldPalette = []string{"#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2"}

// foldSVG draws one panel per workload: median time (ms, linear from 0)
// against shard count (log scale), one line per side, a whisker at each
// point from the lowest to the highest round.
func foldSVG(d *foldData, title string) string {
	const panelW, panelH, padL, padR, padT, padB, cols = 300.0, 230.0, 56.0, 16.0, 28.0, 40.0, 3
	ncol := min(cols, len(d.workloads))
	nrow := (len(d.workloads) + cols - 1) / cols
	width, top := float64(ncol)*panelW+20, 64.0
	height := top + float64(nrow)*panelH + 10
	base := d.base()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="20" y="20" font-size="14">%s</text>`+"\n", esc(title))
	lx := 20.0
	for i, s := range d.sides {
		dash := ""
		if s == base {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="40" x2="%.0f" y2="40" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+24, foldPalette[i%len(foldPalette)], dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="44">%s</text>`+"\n", lx+30, esc(sideName(s)))
		lx += 40 + 7*float64(len(sideName(s)))
	}
	lnLo, lnHi := math.Log(float64(d.shards[0])), math.Log(float64(d.shards[len(d.shards)-1]))
	for pi, w := range d.workloads {
		ox := 10 + float64(pi%cols)*panelW
		oy := top + float64(pi/cols)*panelH
		x0, x1 := ox+padL, ox+panelW-padR
		y0, y1 := oy+panelH-padB, oy+padT // y0 is the bottom (0 ms)
		hi := 0.0
		for _, n := range d.shards {
			for _, s := range d.sides {
				if xs := d.ms[foldKey{w, n, s}]; len(xs) > 0 {
					hi = math.Max(hi, slices.Max(xs))
				}
			}
		}
		step, yTop := niceScale(hi)
		x := func(n int) float64 {
			if lnHi == lnLo {
				return (x0 + x1) / 2
			}
			return x0 + (x1-x0)*(math.Log(float64(n))-lnLo)/(lnHi-lnLo)
		}
		y := func(v float64) float64 { return y0 - (y0-y1)*v/yTop }
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="13" font-weight="bold">%s</text>`+"\n", x0, oy+16, esc(w))
		for t := 0.0; t <= yTop*1.0001; t += step {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y(t), x1, y(t))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", x0-4, y(t)+4, strconv.FormatFloat(t, 'g', 4, 64))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555" transform="rotate(-90 %.1f %.1f)">ms</text>`+"\n", ox+14, (y0+y1)/2, ox+14, (y0+y1)/2)
		for _, n := range d.shards {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(n), y0, x(n), y0+4)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%d</text>`+"\n", x(n), y0+16, n)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">logical shards</text>`+"\n", (x0+x1)/2, y0+32)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x0, y0, x1, y0)
		for si, s := range d.sides {
			color := foldPalette[si%len(foldPalette)]
			dash := ""
			if s == base {
				dash = ` stroke-dasharray="5 3"`
			}
			var pts []string
			for _, n := range d.shards {
				xs := d.ms[foldKey{w, n, s}]
				if len(xs) == 0 {
					continue
				}
				st := statOf(xs)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(n), y(st.med)))
				if st.n > 1 { // side by side, so that the sides' whiskers do not hide each other
					wx := x(n) + 4*(float64(si)-float64(len(d.sides)-1)/2)
					fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", wx, y(st.lo), wx, y(st.hi), color)
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(n), y(st.med), color)
			}
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
			}
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceScale gives a tick step of 1, 2 or 5 times a power of ten and the
// axis top (a multiple of it at or above hi), for about four ticks.
func niceScale(hi float64) (step, top float64) {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		return 1, 1
	}
	raw := hi / 4
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * p
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	return step, math.Ceil(hi/step-1e-9) * step
}
