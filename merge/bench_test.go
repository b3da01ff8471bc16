package merge_test

import (
	"iter"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/merge"
)

// benchParts returns n readings spread at random over k parts, each sorted
// by hottest (temp DESC, id), as k shards would return them.
func benchParts(n, k int) [][]Reading {
	rng := rand.New(rand.NewPCG(7, 11))
	parts := make([][]Reading, k)
	for id := range n {
		i := rng.IntN(k)
		parts[i] = append(parts[i], Reading{ID: int64(id), Temp: float64(rng.IntN(100_000)) / 100})
	}
	for _, p := range parts {
		slices.SortFunc(p, hottest)
	}
	return parts
}

const benchRows, benchInputs = 1_000_000, 8

func BenchmarkSlices(b *testing.B) {
	parts := benchParts(benchRows, benchInputs)
	for _, limit := range []int{-1, 100} {
		b.Run(limitName(limit), func(b *testing.B) {
			b.ReportAllocs()
			rows := 0
			for b.Loop() {
				rows += len(merge.Slices(parts, hottest, 0, limit))
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func BenchmarkSorted(b *testing.B) {
	parts := benchParts(benchRows, benchInputs)
	inputs := make([]iter.Seq2[Reading, error], len(parts))
	for i, p := range parts {
		inputs[i] = seq(p)
	}
	for _, limit := range []int{-1, 100} {
		b.Run(limitName(limit), func(b *testing.B) {
			b.ReportAllocs()
			rows := 0
			for b.Loop() {
				for _, err := range merge.Sorted(inputs, hottest, 0, limit) {
					if err != nil {
						b.Fatal(err)
					}
					rows++
				}
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func limitName(limit int) string {
	if limit < 0 {
		return "all"
	}
	return "limit100"
}
