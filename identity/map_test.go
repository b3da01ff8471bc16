package identity_test

import (
	"database/sql"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/bunshard/bunshard/identity"
)

type Report struct {
	ID int64
}

func TestCanonical(t *testing.T) {
	ny := time.FixedZone("NY", -5*3600)
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	seven := int64(7)
	var nilPtr *int64
	tests := []struct {
		name string
		a, b []any
		same bool
	}{
		{"int and int64", []any{7}, []any{int64(7)}, true},
		{"uint8 and int32", []any{uint8(7)}, []any{int32(7)}, true},
		{"uint64 small", []any{uint64(7)}, []any{7}, true},
		{"uint64 huge", []any{uint64(math.MaxUint64)}, []any{int64(-1)}, false},
		{"pointer", []any{&seven}, []any{7}, true},
		{"nil pointer and nil", []any{nilPtr}, []any{nil}, true},
		{"valuer", []any{sql.NullInt64{Int64: 7, Valid: true}}, []any{7}, true},
		{"null valuer", []any{sql.NullInt64{}}, []any{nil}, true},
		{"bytes and string", []any{[]byte("ab")}, []any{"ab"}, true},
		{"time zones", []any{when}, []any{when.In(ny)}, true},
		{"different ints", []any{7}, []any{8}, false},
		{"int and string", []any{7}, []any{"7"}, false},
		{"composite", []any{1, "a"}, []any{int64(1), []byte("a")}, true},
		{"composite order", []any{1, 2}, []any{2, 1}, false},
		{"composite int vs string", []any{1, 2}, []any{"1", 2}, false},
		{"composite quoting", []any{"a, b", "c"}, []any{"a", "b, c"}, false},
		{"float", []any{float32(1.5)}, []any{1.5}, true},
		{"uuid array", []any{[2]byte{1, 2}}, []any{[2]byte{1, 2}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := identity.Canonical(tt.a...), identity.Canonical(tt.b...)
			if same := a == b; same != tt.same {
				t.Errorf("Canonical(%v) == Canonical(%v) is %v (%#v, %#v); want %v", tt.a, tt.b, same, a, b, tt.same)
			}
		})
	}
}

func TestCanonicalNoAllocs(t *testing.T) {
	for _, v := range []any{int64(123456), "abc"} {
		if n := testing.AllocsPerRun(100, func() { _ = identity.Canonical(v) }); n != 0 {
			t.Errorf("Canonical(%T) allocates %v times; want 0", v, n)
		}
	}
}

func TestMapKeysIncludeShardAndType(t *testing.T) {
	loc, rep := reflect.TypeFor[Location](), reflect.TypeFor[Report]()
	var m identity.Map[string]
	for _, k := range []struct {
		typ   reflect.Type
		shard identity.ShardID
		v     string
	}{{loc, "asia", "a"}, {loc, "europe", "b"}, {rep, "asia", "c"}} {
		if got, added := m.Add(identity.NewKey(k.typ, k.shard, 1), k.v); !added || got != k.v {
			t.Errorf("Add(%v, %v, 1) = %q, %v; want %q, true", k.typ, k.shard, got, added, k.v)
		}
	}
	if m.Len() != 3 {
		t.Errorf("Len() = %d; want 3", m.Len())
	}
	if got, added := m.Add(identity.NewKey(loc, "asia", 1), "again"); added || got != "a" {
		t.Errorf("Add of a tracked key = %q, %v; want the tracked %q, false", got, added, "a")
	}
	m.Delete(identity.NewKey(loc, "asia", int32(1)))
	if _, ok := m.Get(identity.NewKey(loc, "asia", 1)); ok {
		t.Error("Get after Delete found the key")
	}
	n := 0
	for k, v := range m.All() {
		n++
		if got, _ := m.Get(k); got != v {
			t.Errorf("All() yielded %v=%q; Get says %q", k, v, got)
		}
	}
	if n != 2 {
		t.Errorf("All() yielded %d keys; want 2", n)
	}
	m.Clear()
	if m.Len() != 0 {
		t.Errorf("Len() after Clear = %d; want 0", m.Len())
	}
}

func TestKeyString(t *testing.T) {
	loc := reflect.TypeFor[Location]()
	for _, tt := range []struct {
		k    identity.Key
		want string
	}{
		{identity.NewKey(loc, "asia", 7), "Location(7)@asia"},
		{identity.NewKey(loc, "asia", "x"), `Location("x")@asia`},
		{identity.NewKey(loc, "eu", 1, "x"), `Location((int64:1, "x"))@eu`},
	} {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("String() = %q; want %q", got, tt.want)
		}
	}
}
