package numeric

import (
	"math/big"
	"strings"
)

type special int8

const (
	finite special = iota
	negInf
	posInf
	nan
)

// Num is a PostgreSQL numeric: a finite value with its display scale (the
// digits after the point, as PostgreSQL keeps them: 1.50 has scale 2), or
// NaN, Infinity or -Infinity. The zero Num is 0. A Num is immutable.
type Num struct {
	sp    special
	r     *big.Rat // nil means 0
	scale int
}

// maxExp bounds the exponent accepted by Parse (PostgreSQL's numeric holds
// at most 131072 digits before the point and 16383 after it), so that a
// hostile "1e999999999" cannot allocate without bound.
const maxExp = 1 << 18

// Parse reads PostgreSQL numeric text ("-12.50", "NaN", "Infinity",
// "-inf", "1.5e3"), case-insensitively and ignoring surrounding spaces. It
// reports false, and a zero Num, for anything else.
func Parse(s string) (Num, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "nan":
		return Num{sp: nan}, true
	case "infinity", "+infinity", "inf", "+inf":
		return Num{sp: posInf}, true
	case "-infinity", "-inf":
		return Num{sp: negInf}, true
	}
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, ok := parseExp(s[i+1:])
		if !ok {
			return Num{}, false
		}
		exp = e
	}
	intPart, frac, dot := strings.Cut(mant, ".")
	if intPart == "" && frac == "" || !digits(intPart) || !digits(frac) || (dot && mant == ".") {
		return Num{}, false
	}
	scale := len(frac) - exp
	n, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return Num{}, false
	}
	if neg {
		n.Neg(n)
	}
	r := new(big.Rat).SetInt(n)
	if scale > 0 {
		r.Quo(r, new(big.Rat).SetInt(pow10(scale)))
	} else if scale < 0 {
		r.Mul(r, new(big.Rat).SetInt(pow10(-scale)))
	}
	return Num{r: r, scale: max(scale, 0)}, true
}

func parseExp(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || !digits(s) {
		return 0, false
	}
	e := 0
	for _, c := range s {
		e = e*10 + int(c-'0')
		if e > maxExp {
			return 0, false
		}
	}
	if neg {
		e = -e
	}
	return e, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// FromInt is the numeric of an integer, with scale 0.
func FromInt(i *big.Int) Num {
	return Num{r: new(big.Rat).SetInt(i)}
}

func (n Num) rat() *big.Rat {
	if n.r == nil {
		return new(big.Rat)
	}
	return n.r
}

// IsNaN reports whether n is NaN.
func (n Num) IsNaN() bool { return n.sp == nan }

// Compare orders a and b as PostgreSQL does: -Infinity < numbers <
// Infinity < NaN, NaN equal to NaN, and numbers by value whatever their
// scale (1 and 1.00 are equal).
func Compare(a, b Num) int {
	if a.sp != b.sp {
		return rank(a.sp) - rank(b.sp)
	}
	if a.sp != finite {
		return 0
	}
	return a.rat().Cmp(b.rat())
}

func rank(s special) int {
	switch s {
	case negInf:
		return -2
	case finite:
		return -1
	case posInf:
		return 1
	}
	return 2
}

// Key is a text equal for numerics that PostgreSQL calls equal (1, 1.0 and
// 1.00 share one key) and different otherwise: a GROUP BY key.
func (n Num) Key() string {
	switch n.sp {
	case nan:
		return "NaN"
	case posInf:
		return "+Inf"
	case negInf:
		return "-Inf"
	}
	return n.rat().RatString()
}

// String renders n as PostgreSQL prints it: with exactly its scale of
// digits after the point ("4.00"), or "NaN", "Infinity", "-Infinity".
func (n Num) String() string {
	switch n.sp {
	case nan:
		return "NaN"
	case posInf:
		return "Infinity"
	case negInf:
		return "-Infinity"
	}
	return n.rat().FloatString(n.scale)
}

// Add is a + b as PostgreSQL's sum computes it: the scale is the larger of
// the two, NaN absorbs everything, and Infinity + -Infinity is NaN.
func Add(a, b Num) Num {
	switch {
	case a.sp == nan || b.sp == nan:
		return Num{sp: nan}
	case a.sp != finite && b.sp != finite && a.sp != b.sp:
		return Num{sp: nan}
	case a.sp != finite:
		return a
	case b.sp != finite:
		return b
	}
	return Num{r: new(big.Rat).Add(a.rat(), b.rat()), scale: max(a.scale, b.scale)}
}

// Avg is sum / count as PostgreSQL's avg(numeric) returns it: the exact
// quotient rounded half away from zero to the scale PostgreSQL's division
// chooses (at least 16 significant digits, at least sum's scale). count
// must be positive.
func Avg(sum Num, count int64) Num {
	if sum.sp != finite {
		return sum
	}
	n := big.NewInt(count)
	rscale := divScale(sum, FromInt(n))
	q := new(big.Rat).Quo(sum.rat(), new(big.Rat).SetInt(n))
	return Num{r: round(q, rscale), scale: rscale}
}

// divScale is PostgreSQL's select_div_scale (src/backend/utils/adt/numeric.c)
// for x / y: NUMERIC_MIN_SIG_DIGITS (16) significant digits from the
// estimated weight of the quotient in base-10000 digits, at least either
// input's scale, within [0, 1000].
func divScale(x, y Num) int {
	w1, f1 := weight(x)
	w2, f2 := weight(y)
	qw := w1 - w2
	if f1 <= f2 {
		qw--
	}
	rscale := 16 - qw*4
	rscale = max(rscale, x.scale, y.scale, 0)
	return min(rscale, 1000)
}

// weight returns the exponent of the first non-zero base-10000 digit of |x|
// and that digit (0, 0 for zero), as PostgreSQL's NumericVar holds them.
func weight(x Num) (int, int) {
	r := new(big.Rat).Abs(x.rat())
	if r.Sign() == 0 {
		return 0, 0
	}
	// x has at most x.scale digits after the point: FloatString is exact.
	s := strings.Replace(r.FloatString(x.scale), ".", "", 1)
	s = strings.TrimLeft(s, "0")
	e := len(s) - 1 - x.scale // decimal exponent of the leading digit
	w := e / 4
	if e < 0 && e%4 != 0 {
		w-- // floor division
	}
	nd := e - 4*w + 1 // decimal digits in the leading base-10000 digit
	for len(s) < nd {
		s += "0"
	}
	d := 0
	for _, c := range s[:nd] {
		d = d*10 + int(c-'0')
	}
	return w, d
}

// round rounds q to scale digits after the point, half away from zero.
func round(q *big.Rat, scale int) *big.Rat {
	p := pow10(scale)
	m := new(big.Rat).Mul(q, new(big.Rat).SetInt(p))
	num := new(big.Int).Abs(m.Num())
	quo, rem := new(big.Int).QuoRem(num, m.Denom(), new(big.Int))
	if rem.Lsh(rem, 1).Cmp(m.Denom()) >= 0 {
		quo.Add(quo, big.NewInt(1))
	}
	if m.Sign() < 0 {
		quo.Neg(quo)
	}
	return new(big.Rat).SetFrac(quo, p)
}
