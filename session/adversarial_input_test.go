package session_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestBadArgumentsAreNamedNeverPanic calls the session's and the unit's
// object-taking methods with every kind of wrong argument (nil, a typed nil
// where objects are needed, a non-pointer, a pointer to a non-struct, a
// nil slice pointer, a slice holding nil, a pointer to a nil pointer): each
// returns ErrInvalidArgument, never panics, and sends nothing. An empty
// slice is no error and sends nothing either. RunInTx with a nil fn is
// ErrInvalidArgument (it panicked), and AllowRelation of non-models is
// ErrInvalidArgument with a chooser that is no RelationRouter too (it
// answered true, nil).
func TestBadArgumentsAreNamedNeverPanic(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 1, 4))

	bad := map[string]func() any{
		"nil":            func() any { return nil },
		"typed nil":      func() any { return (*weather.Location)(nil) },
		"non-pointer":    func() any { return weather.Location{ID: 1} },
		"int":            func() any { return 5 },
		"map pointer":    func() any { return &map[string]any{} },
		"nil slice ptr":  func() any { return (*[]*weather.Location)(nil) },
		"slice with nil": func() any { return &[]*weather.Location{{ID: 1, Continent: "Asia"}, nil} },
		"ptr to nil ptr": func() any { var l *weather.Location; return &l },
	}
	methods := map[string]func(a any) error{
		"Session.Insert": func(a any) error { return s.Insert(ctx, a) },
		"Session.Update": func(a any) error { return s.Update(ctx, a) },
		"Session.Delete": func(a any) error { return s.Delete(ctx, a) },
		"NewInsert":      func(a any) error { _, err := s.NewInsert().Model(a).Exec(ctx); return err },
		"DBFor":          func(a any) error { _, err := s.DBFor(ctx, a); return err },
		"IdentityKey":    func(a any) error { _, err := s.IdentityKey(a); return err },
		"AllowRelation":  func(a any) error { _, err := s.AllowRelation(ctx, a, &weather.Location{ID: 1}); return err },
		"UnitOfWork.Add": func(a any) error {
			u := s.Begin()
			defer u.Rollback(ctx)
			return u.Add(a)
		},
		"UnitOfWork.Delete": func(a any) error {
			u := s.Begin()
			defer u.Rollback(ctx)
			return u.Delete(a)
		},
	}
	call := func(fn func() error) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("PANIC: %v", r)
			}
		}()
		return fn()
	}
	for mname, m := range methods {
		for bname, b := range bad {
			f.reset()
			err := call(func() error { return m(b()) })
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Errorf("%s(%s) = %v; want ErrInvalidArgument", mname, bname, err)
			}
			if n := f.perShard(); n[0]+n[1]+n[2]+n[3] != 0 {
				t.Errorf("%s(%s) sent %v statements; want none", mname, bname, n)
			}
		}
		if mname == "DBFor" || mname == "IdentityKey" || mname == "AllowRelation" {
			continue // one object only
		}
		f.reset()
		if err := call(func() error { return m(&[]*weather.Location{}) }); err != nil {
			t.Errorf("%s(empty slice) = %v; want nil", mname, err)
		}
		if n := f.perShard(); n[0]+n[1]+n[2]+n[3] != 0 {
			t.Errorf("%s(empty slice) sent %v statements; want none", mname, n)
		}
	}
	err := call(func() error { return s.RunInTx(ctx, nil, nil) })
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("RunInTx(nil fn) = %v; want ErrInvalidArgument", err)
	}
	if n := s.OpenUnits(); n != 0 {
		t.Errorf("RunInTx(nil fn) left %d units open", n)
	}
}
