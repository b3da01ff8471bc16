package merge

import (
	"errors"
	"fmt"
)

// ErrUnsorted means an input of [Sorted] was not in the order its comparator
// describes: a row compared less than the row before it from the same input.
// It usually means the query's ORDER BY and the comparator disagree, for
// instance because a shard uses a different collation. Errors that report it
// are *[UnsortedError] values; test for it with errors.Is.
var ErrUnsorted = errors.New("merge: input not sorted")

// ErrRowReused means an input of [Sorted] yielded a row in the memory of
// its previous row (the same pointer, slice or map), which would defeat the
// order check: copy each row before yielding it.
var ErrRowReused = errors.New("merge: input reused a row's memory")

// UnsortedError says which input went backwards, and where. Its Unwrap
// returns [ErrUnsorted].
type UnsortedError struct {
	// Input is the index of the input in the slice given to Sorted.
	Input int
	// Row is the 0-based position, within that input, of the row that
	// compared less than row Row-1.
	Row int
}

// Error names the input and the two rows that are out of order.
func (e *UnsortedError) Error() string {
	return fmt.Sprintf("%v: input %d, row %d sorts before row %d; the input's order (ORDER BY, collation) must agree with cmp",
		ErrUnsorted, e.Input, e.Row, e.Row-1)
}

// Unwrap returns [ErrUnsorted].
func (e *UnsortedError) Unwrap() error { return ErrUnsorted }
