package identity_test

import (
	"reflect"
	"testing"

	"github.com/bunshard/bunshard/identity"
)

type direct struct {
	ID int64
	identity.Token
}

type base struct {
	Name string
	identity.Token
}

type nested struct {
	ID int64
	base
}

type viaPointer struct {
	ID int64
	*base
}

type none struct{ ID int64 }

// TestTokenFunc finds the embedded Token directly, through an embedded
// struct and through an embedded pointer (nil when the pointer is), and
// reports none for a model without one.
func TestTokenFunc(t *testing.T) {
	d := &direct{}
	n := &nested{}
	p := &viaPointer{base: &base{}}
	cases := []struct {
		name string
		obj  any // a pointer to the struct
		want *identity.Token
	}{
		{"direct", d, &d.Token},
		{"nested", n, &n.Token},
		{"via pointer", p, &p.Token},
		{"nil pointer", &viaPointer{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := reflect.ValueOf(c.obj).Elem()
			f := identity.TokenFunc(v.Type())
			if f == nil {
				t.Fatalf("TokenFunc(%s) = nil; want a function", v.Type())
			}
			if got := f(v); got != c.want {
				t.Errorf("TokenFunc(%s)(v) = %p; want %p", v.Type(), got, c.want)
			}
		})
	}
	if f := identity.TokenFunc(reflect.TypeFor[none]()); f != nil {
		t.Error("TokenFunc(none) is not nil; want nil for a model without a Token")
	}
	if f := identity.TokenFunc(reflect.TypeFor[*direct]()); f != nil {
		t.Error("TokenFunc(*direct) is not nil; want nil for a pointer type")
	}
}

// TestTokenSemantics: SetShard, PinShard, SetPlacement and the zero Token
// answer Shard and Pinned as they did when a Token held the id itself, and
// Place interns: the same pair is the same pointer, and setting an
// interned shard allocates nothing.
func TestTokenSemantics(t *testing.T) {
	var tok identity.Token
	if id, ok := tok.Shard(); id != "" || ok || tok.Pinned() {
		t.Errorf("zero Token: Shard() = %q, %v, Pinned() = %v; want \"\", false, false", id, ok, tok.Pinned())
	}
	tok.PinShard("asia")
	if id, ok := tok.Shard(); id != "asia" || !ok || !tok.Pinned() {
		t.Errorf("PinShard(asia): Shard() = %q, %v, Pinned() = %v; want asia, true, true", id, ok, tok.Pinned())
	}
	tok.SetShard("europe")
	if id, ok := tok.Shard(); id != "europe" || !ok || tok.Pinned() {
		t.Errorf("SetShard(europe): Shard() = %q, %v, Pinned() = %v; want europe, true, false", id, ok, tok.Pinned())
	}
	tok.SetShard("")
	if id, ok := tok.Shard(); id != "" || ok || tok.Pinned() {
		t.Errorf("SetShard(\"\"): Shard() = %q, %v, Pinned() = %v; want unplaced", id, ok, tok.Pinned())
	}
	tok.SetPlacement(identity.Place("asia", true))
	if id, _ := tok.Shard(); id != "asia" || !tok.Pinned() {
		t.Errorf("SetPlacement(Place(asia, true)): Shard() = %q, Pinned() = %v", id, tok.Pinned())
	}
	p1, p2 := identity.Place("asia", true), identity.Place("asia", true)
	if p1 != p2 {
		t.Errorf("Place(asia, true) gave two pointers; want one, interned")
	}
	if identity.Place("asia", true) == identity.Place("asia", false) || identity.Place("asia", false) == identity.Place("europe", false) {
		t.Errorf("Place gave one pointer for two different placements")
	}
	var a, b identity.Token
	a.SetShard("europe")
	b.SetShard("europe")
	if a != b {
		t.Errorf("two Tokens set to the same shard compare unequal")
	}
	if n := testing.AllocsPerRun(100, func() { tok.SetShard("europe") }); n != 0 {
		t.Errorf("SetShard of an interned shard allocates %v times; want 0", n)
	}
}
