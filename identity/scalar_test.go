package identity_test

import (
	"database/sql"
	"database/sql/driver"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/bunshard/bunshard/identity"
)

type tenantID int32

type region string

type uuid [16]byte

// valuer is a custom driver.Valuer, as a user's ID type may be.
type valuer struct{ n int64 }

func (v valuer) Value() (driver.Value, error) { return v.n, nil }

// TestScalarOf is the table of bunshard's one key canonicalization: each
// value, passed as any and read from a struct field through reflect, gives
// the wanted Scalar and Canonical, and Canonical (the identity map's form)
// agrees.
func TestScalarOf(t *testing.T) {
	seven := int64(7)
	var nilPtr *int64
	id := uuid{1, 2, 3}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := []struct {
		in   any
		kind identity.ScalarKind
		want any // Canonical
	}{
		{int(7), identity.ScalarInt, int64(7)},
		{int8(-7), identity.ScalarInt, int64(-7)},
		{int32(7), identity.ScalarInt, int64(7)},
		{int64(7), identity.ScalarInt, int64(7)},
		{uint(7), identity.ScalarInt, int64(7)},
		{uint16(7), identity.ScalarInt, int64(7)},
		{uint64(math.MaxInt64), identity.ScalarInt, int64(math.MaxInt64)},
		{uint64(math.MaxUint64), identity.ScalarUint, uint64(math.MaxUint64)},
		{tenantID(7), identity.ScalarInt, int64(7)},
		{&seven, identity.ScalarInt, int64(7)},
		{sql.NullInt64{Int64: 7, Valid: true}, identity.ScalarInt, int64(7)},
		{valuer{7}, identity.ScalarInt, int64(7)},
		{"asia", identity.ScalarString, "asia"},
		{region("asia"), identity.ScalarString, "asia"},
		{[]byte("asia"), identity.ScalarBytes, "asia"},
		{1.5, identity.ScalarFloat, 1.5},
		{float32(1.5), identity.ScalarFloat, 1.5},
		{id, identity.ScalarOther, id},
		{&id, identity.ScalarOther, id},
		{true, identity.ScalarOther, true},
		{at, identity.ScalarOther, at.UTC()},
		{nil, identity.ScalarNull, nil},
		{nilPtr, identity.ScalarNull, nil},
		{sql.NullInt64{}, identity.ScalarNull, nil},
	}
	for _, tt := range tests {
		s := identity.ScalarOf(tt.in)
		if s.Kind != tt.kind || s.Canonical() != tt.want {
			t.Errorf("ScalarOf(%T %v) = kind %d, Canonical %#v; want kind %d, %#v", tt.in, tt.in, s.Kind, s.Canonical(), tt.kind, tt.want)
		}
		if got := identity.Canonical(tt.in); got != tt.want {
			t.Errorf("Canonical(%T %v) = %#v; want %#v", tt.in, tt.in, got, tt.want)
		}
		if tt.in == nil {
			continue
		}
		// The same value read from a struct field, as the choosers read a
		// shard key and the loader a relation key.
		field := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "K", Type: reflect.TypeOf(tt.in)}})).Elem()
		field.Field(0).Set(reflect.ValueOf(tt.in))
		if f := identity.ScalarOfValue(field.Field(0)); f.Kind != s.Kind || f.Canonical() != s.Canonical() {
			t.Errorf("ScalarOfValue(field %T %v) = kind %d, %#v; ScalarOf gave kind %d, %#v", tt.in, tt.in, f.Kind, f.Canonical(), s.Kind, s.Canonical())
		}
	}
}

// TestScalarSameKeyAcrossTypes: the key 7 held as int32, int64, uint8, a
// named type, a pointer or a Valuer is one identity-map key.
func TestScalarSameKeyAcrossTypes(t *testing.T) {
	seven := int32(7)
	typ := reflect.TypeFor[struct{ ID int64 }]()
	want := identity.NewKey(typ, "asia", int64(7))
	for _, x := range []any{int32(7), uint8(7), tenantID(7), &seven, sql.NullInt64{Int64: 7, Valid: true}, uint64(7)} {
		if got := identity.NewKey(typ, "asia", x); got != want {
			t.Errorf("NewKey(%T 7) = %v; want the key of int64(7), %v", x, got, want)
		}
	}
	if identity.NewKey(typ, "asia", "7") == want {
		t.Error(`NewKey("7") equals NewKey(int64(7)); a string key is another key`)
	}
	if identity.NewKey(typ, "asia", int64(-1)) == identity.NewKey(typ, "asia", uint64(math.MaxUint64)) {
		t.Error("NewKey(-1) equals NewKey(MaxUint64); the same bits are two keys")
	}
}

// TestScalarOfAllocs: reading an integer, a string or a []byte key, passed
// as any or as a struct field, allocates nothing.
func TestScalarOfAllocs(t *testing.T) {
	row := struct {
		ID   int64
		Name string
		Raw  []byte
		T    tenantID
	}{ID: 1234567, Name: "asia", Raw: []byte("asia"), T: 4321}
	v := reflect.ValueOf(&row).Elem()
	var x any = int64(1234567)
	var s any = "asia"
	var n uint64
	if a := testing.AllocsPerRun(100, func() {
		n += identity.ScalarOf(x).N + uint64(len(identity.ScalarOf(s).S))
		for i := range v.NumField() {
			n += identity.ScalarOfValue(v.Field(i)).N
		}
	}); a != 0 {
		t.Errorf("ScalarOf/ScalarOfValue allocate %v times per run; want 0", a)
	}
	_ = n
}
