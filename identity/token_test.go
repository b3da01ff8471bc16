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
