package numeric

import (
	"math/big"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in, out string
		ok      bool
	}{
		{"1", "1", true}, {"1.0", "1.0", true}, {"-1.50", "-1.50", true}, {"+.5", "0.5", true},
		{"1.", "1", true}, {"1.5e3", "1500", true}, {"15e-1", "1.5", true}, {" 2 ", "2", true},
		{"NaN", "NaN", true}, {"nan", "NaN", true}, {"-Infinity", "-Infinity", true}, {"inf", "Infinity", true},
		{"", "", false}, {".", "", false}, {"1e", "", false}, {"1.2.3", "", false}, {"abc", "", false},
		{"--1", "", false}, {"1e999999999", "", false}, {"0x10", "", false},
	} {
		n, ok := Parse(c.in)
		if ok != c.ok || (ok && n.String() != c.out) {
			t.Errorf("Parse(%q) = %v, %t; want %q, %t", c.in, n, ok, c.out, c.ok)
		}
	}
}

func TestCompareAndKey(t *testing.T) {
	order := [][]string{{"-Infinity", "-inf"}, {"-10.5"}, {"-1", "-1.000"}, {"0", "0.00", "-0"},
		{"0.10000000000000000001"}, {"0.10000000000000000002"}, {"1", "1.0", "1.00"}, {"9.5"}, {"10.5"},
		{"Infinity"}, {"NaN", "nan"}}
	for i, gi := range order {
		for j, gj := range order {
			for _, a := range gi {
				for _, b := range gj {
					x, _ := Parse(a)
					y, _ := Parse(b)
					want := 0
					switch {
					case i < j:
						want = -1
					case i > j:
						want = 1
					}
					if got := sign(Compare(x, y)); got != want {
						t.Errorf("Compare(%s, %s) = %d; want %d", a, b, got, want)
					}
					if (x.Key() == y.Key()) != (i == j) {
						t.Errorf("Key(%s) = %q, Key(%s) = %q; equal keys should mean equal values", a, x.Key(), b, y.Key())
					}
				}
			}
		}
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// TestAvg: each want is what PostgreSQL 15 returned for avg(x)::text over
// values with that sum and count (SELECT avg(x) FROM (VALUES ...) v(x)).
func TestAvg(t *testing.T) {
	for _, c := range []struct {
		sum  string
		n    int64
		want string
	}{
		{"3", 2, "1.5000000000000000"},
		{"2.5", 2, "1.25000000000000000000"},
		{"20", 2, "10.0000000000000000"},
		{"0.000000000000000000000000000007", 1, "0.000000000000000000000000000007000000000000000000"},
		{"12345678901234567912.250000000000000001", 6, "2057613150205761318.708333333333333334"},
		{"-1", 3, "-0.33333333333333333333"},
		{"0", 5, "0.00000000000000000000"},
		{"100000", 2, "50000.000000000000"},
		{"1.5", 3, "0.50000000000000000000"},
		{"6", 3, "2.0000000000000000"},
		{"123456791", 3, "41152263.666666666667"},
		{"2.00123", 3, "0.66707666666666666667"},
		{"NaN", 2, "NaN"},
		{"-Infinity", 2, "-Infinity"},
	} {
		s, _ := Parse(c.sum)
		if got := Avg(s, c.n).String(); got != c.want {
			t.Errorf("Avg(%s, %d) = %s; want %s", c.sum, c.n, got, c.want)
		}
	}
}

func TestAdd(t *testing.T) {
	for _, c := range [][3]string{{"1.50", "2.5", "4.00"}, {"NaN", "1", "NaN"}, {"Infinity", "-Infinity", "NaN"},
		{"Infinity", "5", "Infinity"}, {"-0.001", "0.001", "0.000"}} {
		a, _ := Parse(c[0])
		b, _ := Parse(c[1])
		if got := Add(a, b).String(); got != c[2] {
			t.Errorf("Add(%s, %s) = %s; want %s", c[0], c[1], got, c[2])
		}
	}
}

// FuzzCompare checks Parse and Compare against math/big's own parser on
// decimal text of any precision, and Key and String against Compare.
func FuzzCompare(f *testing.F) {
	f.Add("1", "1.00")
	f.Add("9.5", "10.5")
	f.Add("0.10000000000000000001", "0.10000000000000000002")
	f.Add("-12345678901234567890.5", "-12345678901234567890.50001")
	f.Add("NaN", "Infinity")
	f.Fuzz(func(t *testing.T, a, b string) {
		x, okX := Parse(a)
		y, okY := Parse(b)
		if !okX || !okY {
			return
		}
		if back, ok := Parse(x.String()); !ok || Compare(back, x) != 0 {
			t.Fatalf("Parse(%q).String() = %q does not parse back to the same number", a, x.String())
		}
		if (Compare(x, y) == 0) != (x.Key() == y.Key()) {
			t.Fatalf("Compare(%q, %q) = %d but keys %q, %q", a, b, Compare(x, y), x.Key(), y.Key())
		}
		if sign(Compare(x, y)) != -sign(Compare(y, x)) {
			t.Fatalf("Compare(%q, %q) is not antisymmetric", a, b)
		}
		rx, ok1 := ref(a)
		ry, ok2 := ref(b)
		if !ok1 || !ok2 {
			return // a special value: covered by TestCompareAndKey
		}
		if got, want := sign(Compare(x, y)), rx.Cmp(ry); got != want {
			t.Fatalf("Compare(%q, %q) = %d; big.Rat says %d", a, b, got, want)
		}
	})
}

// ref parses plain decimal text with math/big, the reference.
func ref(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "eEnNiI") || len(s) > 400 {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}
