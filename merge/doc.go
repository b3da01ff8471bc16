// Package merge combines the results of one query run on several shards
// into what a single database holding all the rows would have returned.
//
// Each shard returns its rows sorted by the query's ORDER BY. [Sorted]
// streams them into one sequence in that order, and [Slices] does the same
// for rows already in memory; both apply the query's OFFSET and LIMIT to
// the merged result. For that to be right, every shard must be asked for
// the first offset+limit rows (OFFSET 0, LIMIT offset+limit), because any of
// them may hold all the rows that the global offset skips.
//
// Rows are ordered by a comparator shaped like the one of
// [slices.SortFunc], which must order them as the shards' ORDER BY does
// (bunshard's session builds it from the ORDER BY terms and the columns'
// SQL types). Rows that compare equal come out in input order, rows of
// input 0 first, so a merge gives the same result as a stable sort of the
// inputs' concatenation.
//
//	byHottest := func(a, b Reading) int { // ORDER BY temp DESC, id
//		if c := cmp.Compare(b.Temp, a.Temp); c != 0 {
//			return c
//		}
//		return cmp.Compare(a.ID, b.ID)
//	}
//	// perShard holds one iter.Seq2[Reading, error] per shard, each
//	// running ... ORDER BY temp DESC, id LIMIT 10.
//	for r, err := range merge.Sorted(perShard, byHottest, 0, 10) {
//		if err != nil {
//			return err // a shard's error, or merge.ErrUnsorted
//		}
//		fmt.Println(r.ID, r.Temp)
//	}
//
// Sorted checks the order of its inputs and reports [ErrUnsorted] when a
// shard's order disagrees with the comparator (a different collation, say),
// rather than return rows in a wrong order.
//
// merge is a leaf package: it imports only the standard library and knows
// nothing of Bun or PostgreSQL; turning a shard's rows into an [iter.Seq2]
// is the loader's job. Its functions keep no state between calls and are
// safe for concurrent use, provided the comparators are.
package merge
