// Command benchratio reads `go test -bench` output on standard input and
// prints, for each benchmark with a bunshard and a bun (hand-written)
// sub-benchmark, the median time of each and their ratio:
//
//	go test -run '^$' -bench . -count 5 ./bench | go run ./internal/benchratio
//
// A ratio of 1.05 means bunshard took 5% longer than hand-written Bun.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	times := map[string]map[string][]float64{} // workload -> variant -> ns/op samples
	var order []string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || f[3] != "ns/op" {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // drop -GOMAXPROCS
		}
		slash := strings.LastIndexByte(name, '/')
		if slash < 0 {
			continue
		}
		workload, variant := strings.TrimPrefix(name[:slash], "Benchmark"), name[slash+1:]
		ns, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return fmt.Errorf("%q: %w", line, err)
		}
		if times[workload] == nil {
			times[workload] = map[string][]float64{}
			order = append(order, workload)
		}
		times[workload][variant] = append(times[workload][variant], ns)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%-12s %14s %14s %8s %s\n", "workload", "bunshard ms", "bun ms", "ratio", "samples")
	for _, w := range order {
		ours, theirs := times[w]["bunshard"], times[w]["bun"]
		if len(ours) == 0 || len(theirs) == 0 {
			continue
		}
		a, b := median(ours), median(theirs)
		fmt.Fprintf(out, "%-12s %14.3f %14.3f %8.3f %d/%d\n", w, a/1e6, b/1e6, a/b, len(ours), len(theirs))
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
