package identity_test

import (
	"database/sql"
	"math"
	"reflect"
	"sync"
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

// TestIntKeyIsNewKey: a key built from an int64 without boxing is the key
// NewKey builds from any integer of the same value, in a Map, as a map key
// of its own and through PK, and it differs from other types' keys.
func TestIntKeyIsNewKey(t *testing.T) {
	loc, rep := reflect.TypeFor[Location](), reflect.TypeFor[Report]()
	k := identity.NewIntKey(loc, "asia", 7)
	for _, same := range []identity.Key{identity.NewKey(loc, "asia", 7), identity.NewKey(loc, "asia", uint8(7)), identity.NewKey(loc, "asia", int64(7))} {
		if k != same {
			t.Errorf("NewIntKey(7) = %#v != NewKey %#v", k, same)
		}
	}
	for _, other := range []identity.Key{identity.NewKey(loc, "asia", "7"), identity.NewKey(loc, "asia", 8), identity.NewKey(rep, "asia", 7),
		identity.NewKey(loc, "eu", 7), identity.NewKey(loc, "asia", 7.5), identity.NewKey(loc, "asia", 7, 0), {}} {
		if k == other {
			t.Errorf("NewIntKey(7) == %v", other)
		}
	}
	if pk, ok := k.PK().(int64); !ok || pk != 7 {
		t.Errorf("PK() = %#v; want int64 7", k.PK())
	}
	var m identity.Map[int]
	m.Grow(loc, "asia", 100)
	for i := range 100 {
		if _, added := m.Add(identity.NewIntKey(loc, "asia", int64(i)), i); !added {
			t.Fatalf("Add(%d) found it tracked", i)
		}
	}
	m.Add(identity.NewKey(loc, "asia", "s"), -1)
	m.Grow(loc, "asia", 5) // a part with keys is left as it is
	if v, ok := m.Get(identity.NewKey(loc, "asia", 42)); !ok || v != 42 {
		t.Errorf("Get(NewKey 42) = %d, %v; want 42, true", v, ok)
	}
	if _, ok := m.Get(identity.NewKey(loc, "eu", 42)); ok {
		t.Error("Get on another shard found the key")
	}
	if m.Len() != 101 {
		t.Errorf("Len() = %d; want 101", m.Len())
	}
	m.Delete(identity.NewKey(loc, "asia", 42))
	m.Delete(identity.NewKey(loc, "asia", 42)) // not tracked: nothing
	m.Delete(identity.NewKey(rep, "asia", 1))  // no such part: nothing
	if m.Len() != 100 {
		t.Errorf("Len() after Delete = %d; want 100", m.Len())
	}
	seen := map[identity.Key]int{}
	for k, v := range m.All() {
		seen[k] = v
	}
	if len(seen) != 100 || seen[identity.NewKey(loc, "asia", 41)] != 41 || seen[identity.NewKey(loc, "asia", "s")] != -1 {
		t.Errorf("All() = %d keys (41: %d, \"s\": %d); want 100, 41, -1", len(seen), seen[identity.NewKey(loc, "asia", 41)], seen[identity.NewKey(loc, "asia", "s")])
	}
	if n := testing.AllocsPerRun(100, func() { _ = identity.NewIntKey(loc, "asia", 123456) }); n != 0 {
		t.Errorf("NewIntKey allocates %v times; want 0", n)
	}
}

// TestMapGetInParallel: Gets may run from several goroutines at once while
// nothing modifies the map (a unit's relation load probes it from its
// fan-out goroutines). Run under -race: a Get that wrote anything (such as
// a cache of the part used last) fails it.
func TestMapGetInParallel(t *testing.T) {
	loc := reflect.TypeFor[Location]()
	shards := []identity.ShardID{"a", "b", "c", "d"}
	var m identity.Map[int]
	for i := range 400 {
		m.Add(identity.NewKey(loc, shards[i%4], i), i)
	}
	var wg sync.WaitGroup
	missed := make([]int, len(shards))
	for g := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				// Every goroutine walks all four parts, so consecutive Gets
				// change part.
				if v, ok := m.Get(identity.NewKey(loc, shards[i%4], i)); !ok || v != i {
					missed[g]++
				}
			}
		}()
	}
	wg.Wait()
	for g, n := range missed {
		if n > 0 {
			t.Errorf("goroutine %d missed %d of 400 keys", g, n)
		}
	}
}
