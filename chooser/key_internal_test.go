package chooser

import (
	"math"
	"testing"
)

// TestSum64Golden pins the canonical key encoding and its hash. These
// values decide where existing rows live: if this test fails, the change is
// wrong, not the test.
func TestSum64Golden(t *testing.T) {
	type userID int64
	type code string
	tests := []struct {
		value any
		want  uint64
	}{
		{int64(0), 0x34c96acdcadb1bbb},
		{int64(1), 0x9f29cb17a2a49995},
		{int32(1), 0x9f29cb17a2a49995},
		{uint8(1), 0x9f29cb17a2a49995},
		{userID(1), 0x9f29cb17a2a49995},
		{int64(-1), 0x85d136adb773c6c9},
		{uint64(math.MaxUint64), 0x85d136adb773c6c9}, // same 64-bit pattern as -1
		{int64(1234567890123), 0xd9d5580c14aa025d},
		{"", 0xef46db3751d8e999}, // XXH64 of the empty input, seed 0
		{"acme", 0xbb189bfb846fec0c},
		{code("acme"), 0xbb189bfb846fec0c},
		{[]byte("acme"), 0xbb189bfb846fec0c},
		{"日本", 0x80c2e40b8486afab},
	}
	for _, tt := range tests {
		got, ok := sum64(keyOf(tt.value))
		if !ok || got != tt.want {
			t.Errorf("sum64(%T %v) = %#x, %v; want %#x", tt.value, tt.value, got, ok, tt.want)
		}
	}
	for _, v := range []any{nil, 1.5, float32(2), struct{}{}} {
		if got, ok := sum64(keyOf(v)); ok {
			t.Errorf("sum64(%T %v) = %#x, true; want no hash", v, v, got)
		}
	}
}

// TestJumpHashReference checks jumpHash against values generated from the
// paper's reference C++ implementation (as published with dgryski/go-jump's
// tests): for each key, the bucket for n = 1, 2, 3, … buckets.
func TestJumpHashReference(t *testing.T) {
	tests := []struct {
		key     uint64
		buckets []int
	}{
		{0, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []int{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17}},
		{0xdeadbeef, []int{0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16}},
		{0x0ddc0ffeebadf00d, []int{0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15}},
	}
	for _, tt := range tests {
		for i, want := range tt.buckets {
			if got := jumpHash(tt.key, i+1); got != want {
				t.Errorf("jumpHash(%#x, %d) = %d; want %d", tt.key, i+1, got, want)
			}
		}
	}
}

func TestToOrdered(t *testing.T) {
	type name string
	if got, ok := toOrdered[int64](keyOf(int32(-5))); !ok || got != -5 {
		t.Errorf("toOrdered[int64](int32(-5)) = %v, %v; want -5, true", got, ok)
	}
	if got, ok := toOrdered[int8](keyOf(300)); ok {
		t.Errorf("toOrdered[int8](300) = %v, true; want overflow", got)
	}
	if got, ok := toOrdered[uint32](keyOf(-1)); ok {
		t.Errorf("toOrdered[uint32](-1) = %v, true; want failure", got)
	}
	if got, ok := toOrdered[int64](keyOf(uint64(math.MaxUint64))); ok {
		t.Errorf("toOrdered[int64](MaxUint64) = %v, true; want failure", got)
	}
	if got, ok := toOrdered[float64](keyOf(3)); !ok || got != 3 {
		t.Errorf("toOrdered[float64](3) = %v, %v; want 3, true", got, ok)
	}
	if got, ok := toOrdered[name](keyOf([]byte("b"))); !ok || got != "b" {
		t.Errorf("toOrdered[name]([]byte(b)) = %v, %v; want b, true", got, ok)
	}
	if got, ok := toOrdered[string](keyOf(1)); ok {
		t.Errorf("toOrdered[string](1) = %q, true; want failure", got)
	}
	if got, ok := toOrdered[int](keyOf("1")); ok {
		t.Errorf(`toOrdered[int]("1") = %v, true; want failure`, got)
	}
}
