package merge

import "slices"

// Slices merges parts, each already sorted by cmp, into one slice sorted by
// cmp, then skips the first offset rows and keeps at most limit rows. A
// negative limit means no limit; a negative offset counts as 0.
//
// Rows that compare equal keep the order of parts: all such rows of parts[0]
// come before those of parts[1], and so on. The result is therefore the same
// as slices.SortStableFunc over the concatenation of parts, cut to
// offset/limit.
//
// Slices returns nil when no row remains. Otherwise it allocates the result,
// of exactly its length, never sharing memory with parts, and nothing else
// unless more than eight parts are non-empty. It calls cmp O(n log k) times
// for n rows consumed from k non-empty parts. It does not check that the
// parts are sorted: rows out of order come out in an unspecified order
// ([Sorted] does check).
func Slices[T any](parts [][]T, cmp func(a, b T) int, offset, limit int) []T {
	offset = max(offset, 0)
	total, nonEmpty, only := 0, 0, 0
	for i, p := range parts {
		if len(p) > 0 {
			total += len(p)
			nonEmpty++
			only = i
		}
	}
	n := total - offset
	if limit >= 0 {
		n = min(n, limit)
	}
	if n <= 0 {
		return nil
	}
	if nonEmpty == 1 {
		return slices.Clone(parts[only][offset : offset+n])
	}

	out := make([]T, 0, n)
	// Why the array: the heap of a typical fan-out fits on the stack, which
	// leaves the output as Slices' only allocation.
	var small [8]head[T]
	h := heap[T]{items: small[:0], cmp: cmp}
	if nonEmpty > len(small) {
		h.items = make([]head[T], 0, nonEmpty)
	}
	for i, p := range parts {
		if len(p) > 0 {
			h.items = append(h.items, head[T]{row: p[0], src: i})
		}
	}
	h.init()
	for len(out) < n {
		top := &h.items[0]
		p := parts[top.src]
		if len(h.items) == 1 {
			// One part left: the rest of the output is a slice of it.
			rest := p[top.n+offset:]
			return append(out, rest[:n-len(out)]...)
		}
		if offset > 0 {
			offset--
		} else {
			out = append(out, top.row)
		}
		if top.n+1 < len(p) {
			top.n++
			top.row = p[top.n]
			h.down(0)
		} else {
			h.pop()
		}
	}
	return out
}
