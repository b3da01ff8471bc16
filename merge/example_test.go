package merge_test

import (
	"cmp"
	"fmt"
	"iter"

	"github.com/bunshard/bunshard/merge"
)

type Reading struct {
	ID   int64
	Temp float64
}

// hottest is ORDER BY temp DESC, id.
func hottest(a, b Reading) int {
	if c := cmp.Compare(b.Temp, a.Temp); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func ExampleSlices() {
	// Each shard ran SELECT ... ORDER BY temp DESC, id LIMIT 4 (offset 1 +
	// limit 3): any shard may hold all of the global top 4.
	shards := [][]Reading{
		{{ID: 1, Temp: 31.5}, {ID: 4, Temp: 18}},
		{{ID: 2, Temp: 35}, {ID: 5, Temp: 31.5}, {ID: 8, Temp: 12}},
		{{ID: 3, Temp: 22}},
	}
	for _, r := range merge.Slices(shards, hottest, 1, 3) {
		fmt.Println(r.ID, r.Temp)
	}
	// Output:
	// 1 31.5
	// 5 31.5
	// 3 22
}

// shard stands in for the rows of one shard's query.
func shard(rows ...Reading) iter.Seq2[Reading, error] {
	return func(yield func(Reading, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return // a real shard would cancel its query here
			}
		}
	}
}

func ExampleSorted() {
	inputs := []iter.Seq2[Reading, error]{
		shard(Reading{1, 31.5}, Reading{4, 18}),
		shard(Reading{2, 35}, Reading{5, 31.5}, Reading{8, 12}),
		shard(Reading{3, 22}),
	}
	for r, err := range merge.Sorted(inputs, hottest, 0, 3) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(r.ID, r.Temp)
	}

	// A shard whose order disagrees with the comparator is reported.
	inputs[2] = shard(Reading{3, 22}, Reading{7, 40})
	for _, err := range merge.Sorted(inputs, hottest, 0, -1) {
		if err != nil {
			fmt.Println("error:", err)
		}
	}
	// Output:
	// 2 35
	// 1 31.5
	// 5 31.5
	// error: merge: input not sorted: input 2, row 1 sorts before row 0; the input's order (ORDER BY, collation) must agree with cmp
}
