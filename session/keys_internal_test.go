package session

import (
	"database/sql"
	"math"
	"reflect"
	"testing"
)

type continent string

// TestConvertKey is the table of typedKey's conversion rules, column type
// by column type, with no database.
func TestConvertKey(t *testing.T) {
	i8 := reflect.TypeFor[int8]()
	i32 := reflect.TypeFor[int32]()
	i64 := reflect.TypeFor[int64]()
	u16 := reflect.TypeFor[uint16]()
	u64 := reflect.TypeFor[uint64]()
	f32 := reflect.TypeFor[float32]()
	f64 := reflect.TypeFor[float64]()
	str := reflect.TypeFor[string]()
	named := reflect.TypeFor[continent]()
	bytes := reflect.TypeFor[[]byte]()
	five := int64(5)
	for _, tt := range []struct {
		in   any
		to   reflect.Type
		want any // nil: an error
	}{
		{int(42), i64, int64(42)},
		{"42", i64, int64(42)},
		{"-42", i64, int64(-42)},
		{"+42", i64, int64(42)},
		{int32(42), i64, int64(42)},
		{uint8(42), i64, int64(42)},
		{42.0, i64, int64(42)},
		{math.Copysign(0, -1), i64, int64(0)},
		{float64(1 << 53), i64, int64(1 << 53)},
		{float64(1<<53 + 2), i64, nil}, // a float64 there stands for several integers
		{42.5, i64, nil},
		{math.Inf(1), i64, nil},
		{"42.0", i64, nil},
		{" 42", i64, nil},
		{"0x2a", i64, nil},
		{"9223372036854775807", i64, int64(math.MaxInt64)},
		{"9223372036854775808", i64, nil},
		{"-9223372036854775808", i64, int64(math.MinInt64)},
		{uint64(math.MaxInt64), i64, int64(math.MaxInt64)},
		{uint64(math.MaxInt64 + 1), i64, nil},
		{int64(math.MinInt64), i64, int64(math.MinInt64)},
		{127, i8, int8(127)},
		{128, i8, nil},
		{-129, i8, nil},
		{"-128", i8, int8(-128)},
		{int64(1 << 31), i32, nil},
		{-1, u16, nil},
		{"-0", u16, uint16(0)},
		{65535, u16, uint16(65535)},
		{65536, u16, nil},
		{"18446744073709551615", u64, uint64(math.MaxUint64)},
		{"18446744073709551616", u64, nil},
		{int64(-1), u64, nil},
		{true, i64, nil},
		{[]byte("42"), i64, nil},
		{&five, i64, int64(5)},
		{sql.NullInt64{Int64: 7, Valid: true}, i64, int64(7)},
		{&sql.NullInt64{Int64: 7, Valid: true}, i64, int64(7)},
		{sql.NullInt64{}, i64, nil},
		{(*sql.NullInt64)(nil), i64, nil},
		{nil, i64, nil},
		{"Asia", str, "Asia"},
		{continent("Asia"), str, "Asia"},
		{"Asia", named, continent("Asia")},
		{sql.NullString{String: "Asia", Valid: true}, str, "Asia"},
		{42, str, nil}, // strict: format it yourself
		{[]byte("Asia"), str, nil},
		{[]byte("a"), bytes, []byte("a")},
		{"a", bytes, nil},
		{1.5, f64, 1.5},
		{float32(1.5), f64, 1.5},
		{1.1, f32, nil}, // not exactly a float32
		{1.5, f32, float32(1.5)},
		{3, f64, 3.0},
		{int64(1<<53 + 1), f64, nil},
		{uint64(math.MaxUint64), f64, nil},
		{"1.5", f64, nil},
	} {
		got, err := convertKey(reflect.ValueOf(tt.in), tt.to)
		switch {
		case tt.want == nil && err == nil:
			t.Errorf("convertKey(%#v, %s) = %#v; want an error", tt.in, tt.to, got.Interface())
		case tt.want != nil && err != nil:
			t.Errorf("convertKey(%#v, %s) = %v; want %#v", tt.in, tt.to, err, tt.want)
		case tt.want != nil && !reflect.DeepEqual(got.Interface(), tt.want):
			t.Errorf("convertKey(%#v, %s) = %#v (%T); want %#v (%T)", tt.in, tt.to, got.Interface(), got.Interface(), tt.want, tt.want)
		}
	}
}
