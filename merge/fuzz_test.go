package merge_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/merge"
)

// fuzzParts turns fuzz bytes into at most 8 parts: byte b is a row with key
// b&7 (few keys, so many ties) in part (b>>3)%k. With sorted, each part is
// stably sorted by key, as a shard would return it.
func fuzzParts(data []byte, k uint8, sorted bool) [][]row {
	k = k%8 + 1
	if len(data) > 512 {
		data = data[:512]
	}
	parts := make([][]row, k)
	for _, b := range data {
		i := int(b>>3) % int(k)
		parts[i] = append(parts[i], row{key: int(b & 7), src: i, pos: len(parts[i])})
	}
	if sorted {
		for _, p := range parts {
			slices.SortStableFunc(p, byKey)
		}
	}
	return parts
}

func addSeeds(f *testing.F) {
	f.Add([]byte{}, uint8(0), 0, -1)
	f.Add([]byte{1, 2, 3}, uint8(0), 0, -1)
	f.Add([]byte{0x01, 0x0a, 0x13, 0x02, 0x0b, 0x11}, uint8(2), 1, 3)
	f.Add([]byte{0x05, 0x0d, 0x15, 0x1d, 0x05, 0x0d}, uint8(3), 0, 4)         // all ties
	f.Add([]byte{0x07, 0x0e, 0x15, 0x1c, 0x23, 0x2a, 0x31}, uint8(7), 5, 100) // many parts
	f.Add([]byte{0x00, 0x08, 0x10}, uint8(2), 10, 1)                          // offset beyond
	f.Add([]byte{0x03, 0x0c, 0x14}, uint8(1), -3, 0)                          // limit 0
}

func FuzzSlices(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, k uint8, offset, limit int) {
		parts := fuzzParts(data, k, true)
		exp := want(parts, byKey, offset, limit)
		if got := merge.Slices(parts, byKey, offset, limit); !slices.Equal(got, exp) {
			t.Fatalf("Slices(%v, %d, %d) = %v; want %v", parts, offset, limit, got, exp)
		}
	})
}

func FuzzSorted(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, k uint8, offset, limit int) {
		parts := fuzzParts(data, k, true)
		exp := want(parts, byKey, offset, limit)
		got, err := collect(t, merge.Sorted(seqs(parts), byKey, offset, limit))
		if err != nil || !slices.Equal(got, exp) {
			t.Fatalf("Sorted(%v, %d, %d) = %v, %v; want %v, nil", parts, offset, limit, got, err, exp)
		}

		// Unsorted parts, read to the end: Sorted fails exactly when
		// some part is out of order.
		parts = fuzzParts(data, k, false)
		unsorted := slices.ContainsFunc(parts, func(p []row) bool { return !slices.IsSortedFunc(p, byKey) })
		got, err = collect(t, merge.Sorted(seqs(parts), byKey, 0, -1))
		switch {
		case unsorted && !errors.Is(err, merge.ErrUnsorted):
			t.Fatalf("Sorted(%v) = %v, %v; want ErrUnsorted", parts, got, err)
		case !unsorted && (err != nil || !slices.Equal(got, want(parts, byKey, 0, -1))):
			t.Fatalf("Sorted(%v) = %v, %v; want %v, nil", parts, got, err, want(parts, byKey, 0, -1))
		}
	})
}
