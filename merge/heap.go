package merge

// head is the smallest row of one input that the merge has not consumed yet.
type head[T any] struct {
	row T
	src int // index of the input; breaks ties, which makes the merge stable
	n   int // position of row within its input
}

// heap is a binary min-heap of heads ordered by (row, src). container/heap
// would box every element in an interface; this one does not allocate.
//
// Why src breaks ties: each input has at most one head in the heap and its
// rows arrive in order, so ordering by (row, src) emits equal rows input by
// input, which is exactly a stable sort of the inputs' concatenation.
type heap[T any] struct {
	items []head[T]
	cmp   func(a, b T) int
}

func (h *heap[T]) less(a, b *head[T]) bool {
	if c := h.cmp(a.row, b.row); c != 0 {
		return c < 0
	}
	return a.src < b.src
}

// init establishes heap order over items.
func (h *heap[T]) init() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// down moves items[i] towards the leaves until neither child is less.
func (h *heap[T]) down(i int) {
	n := len(h.items)
	x := h.items[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h.less(&h.items[r], &h.items[c]) {
			c = r
		}
		if !h.less(&h.items[c], &x) {
			break
		}
		h.items[i] = h.items[c]
		i = c
	}
	h.items[i] = x
}

// pop removes the root.
func (h *heap[T]) pop() {
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items[last] = head[T]{} // let the GC have the row
	h.items = h.items[:last]
	if last > 0 {
		h.down(0)
	}
}
