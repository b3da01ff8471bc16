package bench

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// side is one way of doing a workload: run does the whole workload once;
// prep and clean (either may be nil) run around it, untimed. digest, called
// untimed after run and before clean, returns a digest of what that run
// produced (digest_test.go); the two sides of a pair must give the same one.
type side struct {
	prep   func()
	run    func() error
	digest func() (uint64, error)
	clean  func()
}

// sameDigest fails tb unless x and y, the digests of one round's two sides,
// are equal.
func sameDigest(tb testing.TB, w workload, round int, x, y uint64) {
	tb.Helper()
	if x != y {
		la, lb := w.labels()
		tb.Fatalf("%s round %d: the %s side's result has digest %016x and the %s side's %016x; "+
			"the two sides no longer return the same rows", w.name, round, la, x, lb, y)
	}
}

// once runs s once, untimed, and returns its digest.
func once(tb testing.TB, s side) uint64 {
	tb.Helper()
	if s.prep != nil {
		s.prep()
	}
	if err := s.run(); err != nil {
		tb.Fatal(err)
	}
	d := digestOf(tb, s)
	if s.clean != nil {
		s.clean()
	}
	return d
}

func digestOf(tb testing.TB, s side) uint64 {
	tb.Helper()
	if s.digest == nil {
		tb.Fatal("a side without a digest: every side of a pair must digest its result")
	}
	d, err := s.digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// workload pairs bunshard (a) with hand-written Bun (b) doing the same work.
// setup runs once per benchmark, untimed; finish (may be nil) after it.
type workload struct {
	name   string
	reps   int    // runs per timing in BenchmarkRatios, for short workloads; 1 if 0
	a, b   string // labels; "bunshard" and "bun" unless set
	setup  func(tb testing.TB, e *env) (a, b side)
	finish func(tb testing.TB, e *env)
}

func (w workload) labels() (string, string) {
	if w.a == "" {
		return "bunshard", "bun"
	}
	return w.a, w.b
}

// benchPair runs w's two sides as the sub-benchmarks <name>/bunshard and
// <name>/bun.
func benchPair(b *testing.B, w workload) {
	e := load(b)
	x, y := w.setup(b, e)
	la, lb := w.labels()
	b.Run(la, func(b *testing.B) { loop(b, x) })
	b.Run(lb, func(b *testing.B) { loop(b, y) })
	sameDigest(b, w, 0, once(b, x), once(b, y))
	if w.finish != nil {
		w.finish(b, e)
	}
}

func loop(b *testing.B, s side) {
	for b.Loop() {
		if s.prep != nil {
			b.StopTimer()
			s.prep()
			b.StartTimer()
		}
		if err := s.run(); err != nil {
			b.Fatal(err)
		}
		if s.clean != nil {
			b.StopTimer()
			s.clean()
			b.StartTimer()
		}
	}
}

// timed runs s reps times and returns how long run took in all (prep,
// digest and clean excluded), in wall time and in this process's CPU time
// (user + system): the client-side cost, which the servers' noise does not
// reach; and the digest of the last run's result.
func timed(b testing.TB, s side, reps int) (wall, cpu time.Duration, digest uint64) {
	for i := range max(reps, 1) {
		if s.prep != nil {
			s.prep()
		}
		start, cpu0 := time.Now(), cpuTime()
		if err := s.run(); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start)
		cpu += cpuTime() - cpu0
		if i == max(reps, 1)-1 {
			digest = digestOf(b, s)
		}
		if s.clean != nil {
			s.clean()
		}
	}
	return wall, cpu, digest
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRatios measures every workload as pairs: each iteration is one
// round that runs, for every workload, bunshard and hand-written Bun back to
// back (in alternating order from round to round), so both sides meet the
// same machine. It reports, per workload, the median over rounds of the
// ratio bunshard/Bun (metric "<name>-ratio"), and logs a table with the
// median times. This is the number the issues' targets are about; machines
// like this one drift by ±15% between separate runs, which a ratio of
// paired rounds cancels:
//
//	go test -run '^$' -bench Ratios -benchtime 15x ./bench
//
// BUNSHARD_RATIOS=W1,W2 limits it to some workloads, each name a pattern
// of path.Match (BUNSHARD_RATIOS='W*.pgx*' is every driver pair of docs/drivers.md);
// BUNSHARD_RATIOS_ALL=1 prints every round's ratio too.
func BenchmarkRatios(b *testing.B) {
	e := load(b)
	workloads := workloads
	if only := os.Getenv("BUNSHARD_RATIOS"); only != "" {
		names := strings.Split(only, ",")
		all := append(append(append(slices.Clone(workloads), driverWorkloads...), pgxHandWorkloads...), scanWorkloads...) // the driver pairs run only when named
		workloads = slices.DeleteFunc(all, func(w workload) bool {
			return !slices.ContainsFunc(names, func(pat string) bool {
				ok, err := path.Match(pat, w.name)
				if err != nil {
					b.Fatalf("BUNSHARD_RATIOS: bad pattern %q: %v", pat, err)
				}
				return ok
			})
		})
		if len(workloads) == 0 {
			b.Fatalf("BUNSHARD_RATIOS=%s names no workload", only)
		}
	}
	type pairSides struct{ a, b side }
	sides := make([]pairSides, len(workloads))
	for i, w := range workloads {
		x, y := w.setup(b, e)
		sides[i] = pairSides{x, y}
	}
	ratios := make([][]float64, len(workloads))
	cpuRatios := make([][]float64, len(workloads))
	ta := make([][]float64, len(workloads))
	tb := make([][]float64, len(workloads))
	round := 0
	for b.Loop() {
		for i := range workloads {
			var da, db, ca, cb time.Duration
			var ha, hb uint64
			reps := max(workloads[i].reps, 1)
			if round%2 == 0 {
				da, ca, ha = timed(b, sides[i].a, reps)
				db, cb, hb = timed(b, sides[i].b, reps)
			} else {
				db, cb, hb = timed(b, sides[i].b, reps)
				da, ca, ha = timed(b, sides[i].a, reps)
			}
			sameDigest(b, workloads[i], round, ha, hb)
			ratios[i] = append(ratios[i], float64(da)/float64(db))
			cpuRatios[i] = append(cpuRatios[i], float64(ca)/float64(cb))
			ta[i] = append(ta[i], float64(da)/1e6/float64(reps))
			tb[i] = append(tb[i], float64(db)/1e6/float64(reps))
		}
		round++
	}
	for _, w := range workloads {
		if w.finish != nil {
			w.finish(b, e)
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\n%-8s %-9s %10s %-9s %10s %8s %8s  (medians of %d paired rounds)\n",
		"workload", "a", "a ms", "b", "b ms", "a/b", "cpu a/b", round)
	for i, w := range workloads {
		la, lb := w.labels()
		r, c := median(ratios[i]), median(cpuRatios[i])
		b.ReportMetric(r, w.name+"-ratio")
		b.ReportMetric(c, w.name+"-cpu-ratio")
		if os.Getenv("BUNSHARD_RATIOS_ALL") != "" {
			fmt.Printf("%s rounds: %.3f\n", w.name, ratios[i])
		}
		fmt.Fprintf(&out, "%-8s %-9s %10.3f %-9s %10.3f %8.3f %8.3f\n", w.name, la, median(ta[i]), lb, median(tb[i]), r, c)
	}
	// Printed, not logged: the testing package cuts benchmark logs at ten lines.
	fmt.Print(out.String())
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestWorkloads runs both sides of every workload once, untimed, so that a
// benchmark that broke, or whose two sides stopped doing the same work (each
// checks its own row count, and the two digests of their results must be
// equal), fails the test suite, not only a later benchmark run.
func TestWorkloads(t *testing.T) {
	e := load(t)
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			x, y := w.setup(t, e)
			sameDigest(t, w, 0, once(t, x), once(t, y))
			if w.finish != nil {
				w.finish(t, e)
			}
		})
	}
}
