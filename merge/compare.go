package merge

import (
	"cmp"
	"slices"
)

// Reverse returns a comparator that orders the other way round from c: it
// turns an ORDER BY key ASC comparator into the DESC one. Note that it also
// moves NULLs to the other end, which is what PostgreSQL does by default
// (see [NullsLast]).
func Reverse[T any](c func(a, b T) int) func(a, b T) int {
	return func(a, b T) int { return c(b, a) }
}

// By returns the lexicographic comparator over cmps, like an ORDER BY with
// several keys: the first comparator that tells a and b apart decides. With
// no comparators every row compares equal, so a merge keeps input order.
// The cmps slice is copied.
func By[T any](cmps ...func(a, b T) int) func(a, b T) int {
	if len(cmps) == 1 {
		return cmps[0]
	}
	cmps = slices.Clone(cmps)
	return func(a, b T) int {
		for _, c := range cmps {
			if r := c(a, b); r != 0 {
				return r
			}
		}
		return 0
	}
}

// NullsLast compares two nullable values, nil standing for NULL: non-nil
// values compare with [cmp.Compare] and nil sorts after every non-nil value.
// It is ORDER BY col ASC with PostgreSQL's default NULLS LAST, and
// [Reverse](NullsLast) is ORDER BY col DESC with PostgreSQL's default NULLS
// FIRST:
//
//	ASC  (NULLS LAST)   NullsLast
//	ASC  NULLS FIRST    NullsFirst
//	DESC (NULLS FIRST)  Reverse(NullsLast)
//	DESC NULLS LAST     Reverse(NullsFirst)
//
// cmp.Compare is not always PostgreSQL's order: it sorts a float NaN before
// every number where PostgreSQL sorts it after, and it compares strings byte
// by byte, which matches only the "C" collation. [Sorted] reports such a
// mismatch as [ErrUnsorted].
func NullsLast[V cmp.Ordered](a, b *V) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return +1
	case b == nil:
		return -1
	}
	return cmp.Compare(*a, *b)
}

// NullsFirst is like [NullsLast] but sorts nil before every non-nil value:
// ORDER BY col ASC NULLS FIRST.
func NullsFirst[V cmp.Ordered](a, b *V) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return +1
	}
	return cmp.Compare(*a, *b)
}
