package identity

import (
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock for Generator.now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestGenerator(t *testing.T, l Layout, bucket int, start time.Time) (*Generator, *fakeClock) {
	t.Helper()
	g, err := NewGenerator(l, bucket)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: start}
	g.now = clock.now
	return g, clock
}

type part struct {
	ms, seq int64
}

func parts(l Layout, id int64) part {
	t, _, seq := l.Decode(id)
	return part{ms: t.UnixMilli() - l.Epoch.UnixMilli(), seq: int64(seq)}
}

func next(t *testing.T, g *Generator) int64 {
	t.Helper()
	id, err := g.Next()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGeneratorClockBackwards checks that a clock set back makes the
// generator keep its last millisecond and count on, never repeating or
// going down.
func TestGeneratorClockBackwards(t *testing.T) {
	l := DefaultLayout()
	start := l.Epoch.Add(1000 * time.Millisecond)
	g, clock := newTestGenerator(t, l, 5, start)
	var got []part
	last := int64(0)
	step := func() {
		id := next(t, g)
		if id <= last {
			t.Fatalf("Next() = %d after %d; want a larger ID", id, last)
		}
		if b := l.Bucket(id); b != 5 {
			t.Fatalf("Bucket(%d) = %d; want 5", id, b)
		}
		last = id
		got = append(got, parts(l, id))
	}
	step()                                       // 1000 ms, seq 0
	step()                                       // 1000 ms, seq 1
	clock.t = start.Add(-300 * time.Millisecond) // back 300 ms
	step()                                       // still 1000 ms, seq 2
	step()                                       // 1000 ms, seq 3
	clock.t = start.Add(time.Millisecond)        // the clock passes again
	step()                                       // 1001 ms, seq 0
	clock.t = l.Epoch.Add(-time.Hour)            // even before the epoch
	step()                                       // 1001 ms, seq 1
	want := []part{{1000, 0}, {1000, 1}, {1000, 2}, {1000, 3}, {1001, 0}, {1001, 1}}
	if len(got) != len(want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ID %d: (ms, seq) = %v; want %v", i, got[i], want[i])
		}
	}
}

// TestGeneratorSequenceOverflow checks that more than 2^SeqBits IDs in one
// millisecond carry into the next millisecond at once, without waiting for
// the clock (which here never moves).
func TestGeneratorSequenceOverflow(t *testing.T) {
	l := Layout{Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TimeBits: 41, BucketBits: 12, SeqBits: 2}
	g, _ := newTestGenerator(t, l, 4095, l.Epoch.Add(50*time.Millisecond))
	var got []part
	for range 10 {
		got = append(got, parts(l, next(t, g)))
	}
	want := []part{{50, 0}, {50, 1}, {50, 2}, {50, 3}, {51, 0}, {51, 1}, {51, 2}, {51, 3}, {52, 0}, {52, 1}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ID %d: (ms, seq) = %v; want %v", i, got[i], want[i])
		}
	}
}

func TestGeneratorBeforeEpoch(t *testing.T) {
	l := DefaultLayout()
	g, clock := newTestGenerator(t, l, 0, l.Epoch.Add(-time.Second))
	if id, err := g.Next(); err == nil || !strings.Contains(err.Error(), "before the epoch") {
		t.Errorf("Next() before the epoch = %d, %v; want an error saying so", id, err)
	}
	clock.t = l.Epoch
	if p := parts(l, next(t, g)); p != (part{0, 1}) {
		t.Errorf("first ID at the epoch: (ms, seq) = %v; want {0 1}", p)
	}
}

func TestGeneratorOutOfTime(t *testing.T) {
	// 3 time bits: milliseconds 0-7 only; 1 sequence bit.
	l := Layout{Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TimeBits: 3, BucketBits: 1, SeqBits: 1}
	g, clock := newTestGenerator(t, l, 1, l.Epoch.Add(7*time.Millisecond))
	next(t, g) // 7 ms, seq 0
	next(t, g) // 7 ms, seq 1
	if id, err := g.Next(); err == nil || !strings.Contains(err.Error(), "run out of time") {
		t.Errorf("Next() past the range by carry = %d, %v; want an error saying the layout ran out of time", id, err)
	}
	clock.t = l.Epoch.Add(time.Hour)
	if id, err := g.Next(); err == nil {
		t.Errorf("Next() past the range by clock = %d, nil; want an error", id)
	}
}
