package planner

import (
	"math"
	"math/big"
	"testing"
)

// TestCompareAnyIntFloatExact checks that an integer aggregate (int64 or a
// sum past int64, *big.Int) compares with a float HavingAgg value by exact
// value, as PostgreSQL compares numbers, not after rounding the integer to a
// float64 (2^53+1 rounds to 2^53) or giving up (a *big.Int against a float
// compared as equal).
func TestCompareAnyIntFloatExact(t *testing.T) {
	two53 := float64(1 << 53)
	huge, _ := new(big.Int).SetString("100000000000000000000", 10) // 1e20, past int64
	tests := []struct {
		name string
		a, b any
		want int
	}{
		{"int64 2^53+1 vs float 2^53", int64(1<<53 + 1), two53, 1},
		{"int64 2^53 vs float 2^53", int64(1 << 53), two53, 0},
		{"float 2^53 vs int64 2^53+1", two53, int64(1<<53 + 1), -1},
		{"int64 2 vs float 2.5", int64(2), 2.5, -1},
		{"int64 vs NaN", int64(math.MaxInt64), math.NaN(), -1},
		{"NaN vs int64", math.NaN(), int64(3), 1},
		{"int64 vs +Inf", int64(math.MaxInt64), math.Inf(1), -1},
		{"int64 vs -Inf", int64(math.MinInt64), math.Inf(-1), 1},
		{"big 1e20 vs float 1e19", huge, 1e19, 1},
		{"big 1e20 vs float 1e21", huge, 1e21, -1},
		{"big 1e20 vs float 1e20", huge, 1e20, 0},
		{"float 1e21 vs big 1e20", 1e21, huge, 1},
		{"big 1e20+1 vs float 1e20", new(big.Int).Add(huge, big.NewInt(1)), 1e20, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compareAny(tt.a, tt.b); got != tt.want {
				t.Errorf("compareAny(%v, %v) = %d; want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
