package merge

import (
	"fmt"
	"iter"
	"reflect"
)

// Sorted merges inputs, each already sorted by cmp, into one sequence sorted
// by cmp, skipping the first offset rows and yielding at most limit rows. A
// negative limit means no limit; a negative offset counts as 0. Rows that
// compare equal keep the order of inputs, as in [Slices].
//
// The inputs are pulled lazily, one row at a time: Sorted holds one row per
// input and nothing else. An input's next row is pulled only after its
// previous row has been consumed (skipped, or yielded and the consumer's
// loop body has returned). With limit 0 no input is started at all.
//
// Goroutines: a single input is ranged over directly. With two or more,
// each input is pulled through [iter.Pull2], which runs it in a coroutine:
// a goroutine of its own that the runtime switches to and from, never in
// parallel with the consumer. Every one of them has ended by the time the
// range over the result returns, however it returns (the end of the rows,
// the limit, a break, an error, a panic in the loop body).
//
// Iteration ends, and every input that was started is stopped, as soon as
// the limit is reached, the consumer breaks out of its loop, an input yields
// an error, or an input goes backwards. Stopping makes the input's own range
// loop end, so a producer can cancel its shard query there (with a deferred
// cancel or rows.Close). Each row is counted against offset and limit once;
// no input is asked for more than offset+limit rows.
//
// Errors: the first error an input yields is yielded as is, with the zero
// T, and ends the iteration. If a row of an input compares less than the
// previous row of the same input, Sorted yields an *[UnsortedError] (which
// matches [ErrUnsorted]) instead of returning rows in a wrong order. The
// check costs one call of cmp per row.
//
// That check compares each row with the one before it from the same input,
// so an input must not overwrite a row when it yields the next one (at
// least not the part that cmp reads): a reused buffer would compare each
// row with itself and let any order through. A row of pointer, slice or
// map type that is the previous row's memory again (the same pointer, the
// same first element, the same map) fails the merge with an error matching
// [ErrRowReused]; an input that reuses memory must yield a copy of each
// row. Rows of other types (structs, numbers, strings) are copied by
// Sorted itself.
//
// Each range over the result ranges over the inputs afresh, so the result
// can be ranged over again if the inputs can.
func Sorted[T any](inputs []iter.Seq2[T, error], cmp func(a, b T) int, offset, limit int) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		m := merger[T]{cmp: cmp, same: sameMemory[T](), skip: max(offset, 0), left: limit, yield: yield}
		switch {
		case limit == 0 || len(inputs) == 0:
		case len(inputs) == 1:
			m.one(inputs[0])
		default:
			m.many(inputs)
		}
	}
}

// merger is the state of one range over the result of Sorted.
type merger[T any] struct {
	cmp   func(a, b T) int
	same  func(a, b T) bool // whether two rows share memory; nil for types that cannot
	skip  int               // rows still to skip
	left  int               // rows still to yield; negative means no limit
	yield func(T, error) bool
}

// emit counts row against offset and limit and yields it if its turn has
// come. It reports whether the merge should go on.
func (m *merger[T]) emit(row T) bool {
	if m.skip > 0 {
		m.skip--
		return true
	}
	if !m.yield(row, nil) {
		return false
	}
	if m.left > 0 {
		m.left--
	}
	return m.left != 0
}

// fail yields err with the zero T. The merge ends after it whatever the
// consumer answers.
func (m *merger[T]) fail(err error) {
	var zero T
	m.yield(zero, err)
}

// check fails the merge and reports false if row n of input src, row,
// does not follow prev, the row before it: because it is prev's memory
// again, or sorts before it.
func (m *merger[T]) check(prev, row T, src, n int) bool {
	if m.same != nil && m.same(prev, row) {
		m.fail(fmt.Errorf("%w: input %d yielded row %d in the memory of row %d; yield a copy of each row",
			ErrRowReused, src, n, n-1))
		return false
	}
	if m.cmp(prev, row) > 0 {
		m.fail(&UnsortedError{Input: src, Row: n})
		return false
	}
	return true
}

// sameMemory returns a function reporting whether two values of T share
// memory, for the kinds of T that can: pointers (the same non-nil pointer),
// slices (the same first element) and maps (the same non-nil map). For
// other kinds it returns nil: copying a row copies it.
func sameMemory[T any]() func(a, b T) bool {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Chan:
		var zero T
		return func(a, b T) bool { return any(a) == any(b) && any(a) != any(zero) }
	case reflect.Slice, reflect.Map:
		return func(a, b T) bool {
			x, y := reflect.ValueOf(a), reflect.ValueOf(b)
			return x.Len() > 0 && y.Len() > 0 && x.Pointer() == y.Pointer()
		}
	}
	return nil
}

// one handles a single input without the heap: ranging over it directly
// stops it on return, like Pull2's stop would.
func (m *merger[T]) one(in iter.Seq2[T, error]) {
	var prev T
	n := 0
	for row, err := range in {
		if err != nil {
			m.fail(err)
			return
		}
		if n > 0 && !m.check(prev, row, 0, n) {
			return
		}
		if !m.emit(row) {
			return
		}
		prev = row
		n++
	}
}

func (m *merger[T]) many(inputs []iter.Seq2[T, error]) {
	nexts := make([]func() (T, error, bool), len(inputs))
	stops := make([]func(), len(inputs))
	// Why stop every input here, and not only those still in the heap: an
	// input that errored or went backwards is still suspended in its yield,
	// and one that finished needs no stop but takes no harm from it. This
	// also runs if the consumer's loop body panics.
	defer func() {
		for _, stop := range stops {
			if stop != nil {
				stop()
			}
		}
	}()

	h := heap[T]{items: make([]head[T], 0, len(inputs)), cmp: m.cmp}
	for i, in := range inputs {
		nexts[i], stops[i] = iter.Pull2(in)
		row, err, ok := nexts[i]()
		if !ok {
			continue
		}
		if err != nil {
			m.fail(err)
			return
		}
		h.items = append(h.items, head[T]{row: row, src: i})
	}
	h.init()

	for len(h.items) > 0 {
		top := &h.items[0]
		prev := top.row
		// Why emit before pulling the next row of the same input: the input
		// may reuse prev's memory for that row, and once the limit is
		// reached we must not read from any input again.
		if !m.emit(prev) {
			return
		}
		row, err, ok := nexts[top.src]()
		switch {
		case !ok:
			h.pop()
		case err != nil:
			m.fail(err)
			return
		case !m.check(prev, row, top.src, top.n+1):
			return
		default:
			top.row = row
			top.n++
			h.down(0)
		}
	}
}
