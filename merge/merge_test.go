package merge_test

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/merge"
)

// TestMain fails the run if any iter.Pull2 coroutine of Sorted outlives
// the test that started it: that would be an input nobody stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// row is a test row: key is what the comparator sees; src and pos say
// where the row came from, so that comparing whole rows checks stability.
type row struct {
	key      int
	src, pos int
}

func (r row) String() string { return fmt.Sprintf("%d@%d.%d", r.key, r.src, r.pos) }

func byKey(a, b row) int { return cmp.Compare(a.key, b.key) }

func byKeyDesc(a, b row) int { return cmp.Compare(b.key, a.key) }

// makeParts turns keys into parts of rows labelled with their origin.
func makeParts(keys ...[]int) [][]row {
	parts := make([][]row, len(keys))
	for i, ks := range keys {
		for j, k := range ks {
			parts[i] = append(parts[i], row{key: k, src: i, pos: j})
		}
	}
	return parts
}

// want is the ground truth: a stable sort of the concatenation, cut to
// offset and limit.
func want[T any](parts [][]T, c func(a, b T) int, offset, limit int) []T {
	all := slices.Concat(parts...)
	slices.SortStableFunc(all, c)
	offset = max(offset, 0)
	if offset >= len(all) {
		return nil
	}
	all = all[offset:]
	if limit >= 0 && limit < len(all) {
		all = all[:limit]
	}
	return all
}

// seq yields rows, never an error.
func seq[T any](rows []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func seqs[T any](parts [][]T) []iter.Seq2[T, error] {
	out := make([]iter.Seq2[T, error], len(parts))
	for i, p := range parts {
		out[i] = seq(p)
	}
	return out
}

// collect ranges over s and returns its rows and the error, if any, that
// ended it. It fails t if the error is not the last thing s yields or does
// not come with the zero T.
func collect[T comparable](t *testing.T, s iter.Seq2[T, error]) ([]T, error) {
	t.Helper()
	var rows []T
	var zero T
	var err error
	for r, e := range s {
		if err != nil {
			t.Fatalf("Sorted yielded %v, %v after error %v", r, e, err)
		}
		if e != nil {
			if r != zero {
				t.Errorf("Sorted yielded row %v with error %v; want the zero row", r, e)
			}
			err = e
			continue
		}
		rows = append(rows, r)
	}
	return rows, err
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name          string
		keys          [][]int
		cmp           func(a, b row) int
		offset, limit int
	}{
		{"no parts", nil, byKey, 0, -1},
		{"empty parts", [][]int{{}, nil, {}}, byKey, 0, -1},
		{"one part", [][]int{{1, 2, 3}}, byKey, 0, -1},
		{"one part offset limit", [][]int{{1, 2, 3, 4}}, byKey, 1, 2},
		{"one non-empty part", [][]int{{}, {1, 2, 3}, nil}, byKey, 1, -1},
		{"interleaved", [][]int{{1, 4, 7}, {2, 5, 8}, {3, 6, 9}}, byKey, 0, -1},
		{"ties keep part order", [][]int{{1, 2, 2}, {2, 2, 3}, {1, 2}}, byKey, 0, -1},
		{"all equal", [][]int{{5, 5}, {5}, {5, 5, 5}}, byKey, 0, -1},
		{"empty parts between", [][]int{{}, {3, 4}, {}, {1, 2}, nil}, byKey, 0, -1},
		{"offset", [][]int{{1, 3, 5}, {2, 4, 6}}, byKey, 2, -1},
		{"offset and limit", [][]int{{1, 3, 5}, {2, 4, 6}}, byKey, 2, 3},
		{"offset reaches into last part", [][]int{{1, 2}, {10, 11, 12, 13}}, byKey, 3, 2},
		{"offset equals total", [][]int{{1, 3}, {2}}, byKey, 3, -1},
		{"offset beyond total", [][]int{{1, 3}, {2}}, byKey, 10, 5},
		{"negative offset", [][]int{{1, 3}, {2}}, byKey, -4, 2},
		{"limit 0", [][]int{{1, 3}, {2}}, byKey, 0, 0},
		{"limit 1", [][]int{{1, 3}, {2}}, byKey, 0, 1},
		{"limit total", [][]int{{1, 3}, {2}}, byKey, 0, 3},
		{"limit beyond total", [][]int{{1, 3}, {2}}, byKey, 0, 100},
		{"descending", [][]int{{9, 5, 1}, {8, 5, 2}, {7}}, byKeyDesc, 0, -1},
		{"descending ties", [][]int{{3, 3, 1}, {3, 2, 2}}, byKeyDesc, 1, 4},
		{"all rows equal: input order", [][]int{{3, 1}, {2}, {0}}, func(a, b row) int { return 0 }, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := makeParts(tt.keys...)
			exp := want(parts, tt.cmp, tt.offset, tt.limit)

			got := merge.Slices(parts, tt.cmp, tt.offset, tt.limit)
			if !slices.Equal(got, exp) {
				t.Errorf("Slices(%v, %d, %d) = %v; want %v", parts, tt.offset, tt.limit, got, exp)
			}
			if cap(got) != len(got) {
				t.Errorf("Slices(%v, %d, %d): cap %d, len %d; want the output sized exactly", parts, tt.offset, tt.limit, cap(got), len(got))
			}

			got, err := collect(t, merge.Sorted(seqs(parts), tt.cmp, tt.offset, tt.limit))
			if err != nil || !slices.Equal(got, exp) {
				t.Errorf("Sorted(%v, %d, %d) = %v, %v; want %v, nil", parts, tt.offset, tt.limit, got, err, exp)
			}
		})
	}
}

func TestSlicesDoesNotAlias(t *testing.T) {
	for _, parts := range [][][]int{{{1, 2, 3}}, {{1, 3}, {2}}} {
		got := merge.Slices(parts, cmp.Compare[int], 0, -1)
		got[0] = 99
		if parts[0][0] != 1 {
			t.Fatalf("writing to the result of Slices(%v) changed its input", parts)
		}
	}
}

func TestSlicesAllocs(t *testing.T) {
	parts := makeParts([]int{1, 4, 7}, []int{2, 5, 8}, []int{3, 6, 9})
	for _, limit := range []int{-1, 4} {
		if n := testing.AllocsPerRun(100, func() { merge.Slices(parts, byKey, 1, limit) }); n != 1 {
			t.Errorf("Slices(limit %d) made %v allocations; want 1, the result", limit, n)
		}
	}
}

// TestProperty checks Slices and Sorted against a stable sort of the
// concatenation on random inputs with many ties.
func TestProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		keys := make([][]int, rng.IntN(12)) // beyond 8 parts too
		for i := range keys {
			keys[i] = make([]int, rng.IntN(20))
			for j := range keys[i] {
				keys[i][j] = rng.IntN(6)
			}
			slices.Sort(keys[i])
		}
		parts := makeParts(keys...)
		offset, limit := rng.IntN(40)-2, rng.IntN(40)-2
		exp := want(parts, byKey, offset, limit)
		if got := merge.Slices(parts, byKey, offset, limit); !slices.Equal(got, exp) {
			t.Fatalf("Slices(%v, %d, %d) = %v; want %v", parts, offset, limit, got, exp)
		}
		got, err := collect(t, merge.Sorted(seqs(parts), byKey, offset, limit))
		if err != nil || !slices.Equal(got, exp) {
			t.Fatalf("Sorted(%v, %d, %d) = %v, %v; want %v, nil", parts, offset, limit, got, err, exp)
		}
	}
}

// probe is an input that counts the rows pulled from it and records whether
// its range loop has returned, which is what stopping it does.
type probe struct {
	rows     []row
	failAt   int // yield failErr instead of rows[failAt]
	failErr  error
	pulls    int
	started  bool
	returned bool
}

func (p *probe) seq(yield func(row, error) bool) {
	p.started = true
	defer func() { p.returned = true }()
	for i, r := range p.rows {
		p.pulls++
		if p.failErr != nil && i == p.failAt {
			yield(row{}, p.failErr)
			return
		}
		if !yield(r, nil) {
			return
		}
	}
}

func probes(parts [][]row) ([]*probe, []iter.Seq2[row, error]) {
	ps := make([]*probe, len(parts))
	in := make([]iter.Seq2[row, error], len(parts))
	for i, p := range parts {
		ps[i] = &probe{rows: p}
		in[i] = ps[i].seq
	}
	return ps, in
}

// checkStopped fails t unless every started input has returned.
func checkStopped(t *testing.T, ps []*probe) {
	t.Helper()
	for i, p := range ps {
		if p.started && !p.returned {
			t.Errorf("input %d was started but never stopped", i)
		}
	}
}

func TestSortedStopsEarly(t *testing.T) {
	const k, n = 5, 100
	keys := make([][]int, k)
	for i := range keys {
		for j := range n {
			keys[i] = append(keys[i], j*k+i) // interleaved: 0 1 2 3 4 5 ...
		}
	}
	for _, tc := range []struct{ offset, limit int }{{0, 1}, {0, 7}, {3, 5}, {17, 4}, {0, k * n}} {
		for _, parts := range [][][]row{makeParts(keys...), makeParts(keys[0]), makeParts(slices.Repeat([][]int{{1, 1, 1, 1, 1, 1, 1, 1}}, k)...)} {
			name := fmt.Sprintf("offset=%d,limit=%d,inputs=%d", tc.offset, tc.limit, len(parts))
			t.Run(name, func(t *testing.T) {
				ps, in := probes(parts)
				got, err := collect(t, merge.Sorted(in, byKey, tc.offset, tc.limit))
				if exp := want(parts, byKey, tc.offset, tc.limit); err != nil || !slices.Equal(got, exp) {
					t.Fatalf("Sorted = %v, %v; want %v, nil", got, err, exp)
				}
				checkStopped(t, ps)
				for i, p := range ps {
					// Sorted never pulls after the last row it yields, so
					// offset+limit pulls suffice, one fewer than a naive merge.
					if max := tc.offset + tc.limit; p.pulls > max {
						t.Errorf("input %d was pulled %d times; want at most offset+limit = %d", i, p.pulls, max)
					}
				}
			})
		}
	}

	t.Run("limit 0 starts nothing", func(t *testing.T) {
		ps, in := probes(makeParts(keys...))
		for r, err := range merge.Sorted(in, byKey, 0, 0) {
			t.Errorf("Sorted(limit 0) yielded %v, %v", r, err)
		}
		for i, p := range ps {
			if p.started {
				t.Errorf("Sorted(limit 0) started input %d", i)
			}
		}
	})

	for _, inputs := range []int{1, k} {
		t.Run(fmt.Sprintf("consumer breaks/inputs=%d", inputs), func(t *testing.T) {
			ps, in := probes(makeParts(keys[:inputs]...))
			seen := 0
			for _, err := range merge.Sorted(in, byKey, 0, -1) {
				if err != nil {
					t.Fatal(err)
				}
				if seen++; seen == 3 {
					break
				}
			}
			checkStopped(t, ps)
			for i, p := range ps {
				if p.pulls > 3 {
					t.Errorf("input %d was pulled %d times after the consumer took 3 rows", i, p.pulls)
				}
			}
		})
	}

	t.Run("consumer panics", func(t *testing.T) {
		ps, in := probes(makeParts(keys...))
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the panic in the loop body did not reach the consumer")
				}
			}()
			for range merge.Sorted(in, byKey, 0, -1) {
				panic("consumer")
			}
		}()
		checkStopped(t, ps)
	})
}

func TestSortedError(t *testing.T) {
	boom := errors.New("shard 2: connection reset")
	parts := makeParts([]int{1, 4, 7, 10}, []int{2, 5, 8, 11}, []int{3, 6, 9, 12})
	for _, failAt := range []int{0, 2} {
		t.Run(fmt.Sprintf("failAt=%d", failAt), func(t *testing.T) {
			ps, in := probes(parts)
			ps[2].failAt, ps[2].failErr = failAt, boom
			got, err := collect(t, merge.Sorted(in, byKey, 0, -1))
			if !errors.Is(err, boom) {
				t.Fatalf("Sorted error = %v; want %v", err, boom)
			}
			// Rows from before the failure may have been yielded, in
			// order; none after it.
			if exp := want(parts, byKey, 0, -1)[:len(got)]; !slices.Equal(got, exp) {
				t.Errorf("Sorted yielded %v before the error; want a prefix of the merge, %v", got, exp)
			}
			if len(got) > failAt*3+2 {
				t.Errorf("Sorted yielded %d rows before the error; input 2 failed at row %d", len(got), failAt)
			}
			checkStopped(t, ps)
		})
	}

	t.Run("one input", func(t *testing.T) {
		ps, in := probes(parts[:1])
		ps[0].failAt, ps[0].failErr = 1, boom
		got, err := collect(t, merge.Sorted(in, byKey, 0, -1))
		if !errors.Is(err, boom) || len(got) != 1 {
			t.Errorf("Sorted = %v, %v; want 1 row, %v", got, err, boom)
		}
		checkStopped(t, ps)
	})
}

func TestSortedUnsorted(t *testing.T) {
	tests := []struct {
		name  string
		keys  [][]int
		input int // of the UnsortedError
		row   int
	}{
		{"one input", [][]int{{1, 2, 5, 3}}, 0, 3},
		{"second input", [][]int{{1, 2, 3, 4, 6}, {2, 5, 4, 7}, {0, 9}}, 1, 2},
		{"first row of ties then smaller", [][]int{{1, 1, 0}, {2}}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, in := probes(makeParts(tt.keys...))
			_, err := collect(t, merge.Sorted(in, byKey, 0, -1))
			if !errors.Is(err, merge.ErrUnsorted) {
				t.Fatalf("Sorted(%v) error = %v; want ErrUnsorted", tt.keys, err)
			}
			var ue *merge.UnsortedError
			if !errors.As(err, &ue) || ue.Input != tt.input || ue.Row != tt.row {
				t.Fatalf("Sorted(%v) error = %#v; want input %d, row %d", tt.keys, err, tt.input, tt.row)
			}
			msg := fmt.Sprintf("merge: input not sorted: input %d, row %d sorts before row %d", tt.input, tt.row, tt.row-1)
			if !strings.HasPrefix(err.Error(), msg) {
				t.Errorf("error text %q; want it to start with %q", err, msg)
			}
			checkStopped(t, ps)
		})
	}
}

// TestSortedRangeTwice checks that the result of Sorted can be ranged over
// again when its inputs can.
func TestSortedRangeTwice(t *testing.T) {
	parts := makeParts([]int{1, 3}, []int{2, 4})
	s := merge.Sorted(seqs(parts), byKey, 1, 2)
	first, err1 := collect(t, s)
	second, err2 := collect(t, s)
	if err1 != nil || err2 != nil || !slices.Equal(first, second) || len(first) != 2 {
		t.Errorf("ranging twice gave %v, %v then %v, %v; want the same two rows", first, err1, second, err2)
	}
}

// reusing is an input that yields every row in one buffer of type *int,
// overwriting it for the next row, as a scanner reusing its destination
// would.
func reusing(vals ...int) iter.Seq2[*int, error] {
	return func(yield func(*int, error) bool) {
		buf := new(int)
		for _, v := range vals {
			*buf = v
			if !yield(buf, nil) {
				return
			}
		}
	}
}

// fresh yields every row in memory of its own.
func fresh(vals ...int) iter.Seq2[*int, error] {
	return func(yield func(*int, error) bool) {
		for _, v := range vals {
			if !yield(&v, nil) {
				return
			}
		}
	}
}

// TestSortedReusedMemory: an input 5, 1, 3 (out of order) through a reused
// buffer once merged to [2 4 5 1 3] with no error, since each row was
// compared with itself. A row in the previous row's memory is now an error,
// for pointers, slices and maps; the same input with fresh rows is
// ErrUnsorted, and a value type that the input reuses is still checked.
func TestSortedReusedMemory(t *testing.T) {
	byVal := func(a, b *int) int { return cmp.Compare(*a, *b) }
	for _, inputs := range [][]iter.Seq2[*int, error]{
		{fresh(2, 4), reusing(5, 1, 3)},
		{reusing(5, 1, 3)},
		{reusing(1, 2, 3), fresh(0)}, // in order, but unchecked all the same
	} {
		var got []int
		var err error
		for p, e := range merge.Sorted(inputs, byVal, 0, -1) {
			if e != nil {
				err = e
				break
			}
			got = append(got, *p)
		}
		if !errors.Is(err, merge.ErrRowReused) {
			t.Errorf("Sorted(%d inputs, one reusing its buffer) = %v, %v; want ErrRowReused", len(inputs), got, err)
		}
	}
	for _, inputs := range [][]iter.Seq2[*int, error]{{fresh(2, 4), fresh(5, 1, 3)}, {fresh(5, 1, 3)}} {
		var err error
		for _, e := range merge.Sorted(inputs, byVal, 0, -1) {
			if e != nil {
				err = e
			}
		}
		if !errors.Is(err, merge.ErrUnsorted) {
			t.Errorf("Sorted(%d inputs, 5 1 3 in fresh rows) error = %v; want ErrUnsorted", len(inputs), err)
		}
	}

	sliceIn := func(yield func([]int, error) bool) {
		buf := make([]int, 1)
		for _, v := range []int{5, 1, 3} {
			buf[0] = v
			if !yield(buf, nil) {
				return
			}
		}
	}
	var err error
	for _, e := range merge.Sorted([]iter.Seq2[[]int, error]{sliceIn}, func(a, b []int) int { return cmp.Compare(a[0], b[0]) }, 0, -1) {
		if e != nil {
			err = e
		}
	}
	if !errors.Is(err, merge.ErrRowReused) {
		t.Errorf("Sorted(a reused []int buffer) error = %v; want ErrRowReused", err)
	}

	mapIn := func(yield func(map[string]int, error) bool) {
		buf := map[string]int{}
		for _, v := range []int{5, 1, 3} {
			buf["k"] = v
			if !yield(buf, nil) {
				return
			}
		}
	}
	err = nil
	for _, e := range merge.Sorted([]iter.Seq2[map[string]int, error]{mapIn, mapIn}, func(a, b map[string]int) int { return cmp.Compare(a["k"], b["k"]) }, 0, -1) {
		if e != nil {
			err = e
		}
	}
	if !errors.Is(err, merge.ErrRowReused) {
		t.Errorf("Sorted(a reused map) error = %v; want ErrRowReused", err)
	}

	// A value type is copied: an input reusing one variable is still checked.
	valIn := func(yield func(row, error) bool) {
		var r row
		for _, v := range []int{5, 1, 3} {
			r.key = v
			if !yield(r, nil) {
				return
			}
		}
	}
	err = nil
	for _, e := range merge.Sorted([]iter.Seq2[row, error]{valIn, seq([]row{{key: 2}})}, byKey, 0, -1) {
		if e != nil {
			err = e
		}
	}
	if !errors.Is(err, merge.ErrUnsorted) {
		t.Errorf("Sorted(a reused value) error = %v; want ErrUnsorted", err)
	}
}

// TestSortedGoroutines: what the doc says of goroutines. One input runs in
// the consumer's goroutine; with several, each runs in an iter.Pull2
// coroutine while the merge is under way, and none is left once the range
// returns, however it returns.
func TestSortedGoroutines(t *testing.T) {
	parts := makeParts([]int{1, 4, 7}, []int{2, 5, 8}, []int{3, 6, 9})
	t.Run("one input starts none", func(t *testing.T) {
		n := 0
		for _, err := range merge.Sorted(seqs(parts[:1]), byKey, 0, -1) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				if err := goleak.Find(); err != nil {
					t.Errorf("a goroutine runs while Sorted merges one input: %v", err)
				}
			}
		}
		if n != 3 {
			t.Fatalf("Sorted(one input) yielded %d rows; want 3", n)
		}
	})
	t.Run("several inputs run in coroutines", func(t *testing.T) {
		n := 0
		for _, err := range merge.Sorted(seqs(parts), byKey, 0, -1) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 && goleak.Find() == nil {
				t.Errorf("no goroutine runs while Sorted merges 3 inputs; the doc says each runs in an iter.Pull2 coroutine")
			}
		}
		if n != 9 {
			t.Fatalf("Sorted yielded %d rows; want 9", n)
		}
	})
	boom := errors.New("boom")
	for name, run := range map[string]func(){
		"end of rows": func() {
			for range merge.Sorted(seqs(parts), byKey, 0, -1) {
			}
		},
		"limit": func() {
			for range merge.Sorted(seqs(parts), byKey, 0, 4) {
			}
		},
		"break": func() {
			for range merge.Sorted(seqs(parts), byKey, 0, -1) {
				break
			}
		},
		"input error": func() {
			ps, in := probes(parts)
			ps[1].failAt, ps[1].failErr = 1, boom
			for range merge.Sorted(in, byKey, 0, -1) {
			}
		},
		"input unsorted": func() {
			for range merge.Sorted(seqs(makeParts([]int{1, 0}, []int{2})), byKey, 0, -1) {
			}
		},
		"panic in the loop body": func() {
			defer func() { _ = recover() }()
			for range merge.Sorted(seqs(parts), byKey, 0, -1) {
				panic("consumer")
			}
		},
	} {
		t.Run("none left after "+name, func(t *testing.T) {
			run()
			if err := goleak.Find(); err != nil {
				t.Errorf("after %s: %v", name, err)
			}
		})
	}
}
