package merge

// GroupMerge combines per-group partial aggregates from several shards:
// rows of parts with the same key are folded left to right with combine, in
// part order, and each group appears once, at the place where its key was
// first seen (parts[0] first). Callers sort the result afterwards if the
// query has an ORDER BY.
//
// combine receives the accumulated row and the next row of the same group
// and returns the new accumulated row. It must make sense for partials:
// COUNT and SUM add, MIN and MAX take the smaller or larger, but AVG cannot
// be merged from averages; have the shards return SUM and COUNT instead.
// The rows of parts are copied, never modified.
func GroupMerge[K comparable, A any](parts [][]A, key func(A) K, combine func(acc, next A) A) []A {
	var out []A
	at := make(map[K]int)
	for _, p := range parts {
		for _, a := range p {
			k := key(a)
			if i, ok := at[k]; ok {
				out[i] = combine(out[i], a)
				continue
			}
			at[k] = len(out)
			out = append(out, a)
		}
	}
	return out
}
