package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// Every related object is vetted, whatever its values: a zero struct behind
// a non-nil pointer, or in a slice, is a related object like any other.
func TestRelationCheckVetsZeroObjects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	denyAll := chooser.RelationRouterFunc(func(context.Context, chooser.Object, chooser.Object) chooser.Verdict {
		return chooser.Deny
	})
	s, err := session.New(f.shards, chooser.NewRouters(weather.ShardChooser, denyAll), chooser.All, weather.ByContinent)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		loc  *weather.Location
	}{
		{"zero has-one behind a pointer", &weather.Location{ID: 1, Continent: "Asia", City: "a", Station: &weather.Station{}}},
		{"set has-one", &weather.Location{ID: 2, Continent: "Asia", City: "b", Station: &weather.Station{Name: "x"}}},
		{"zero has-many element", &weather.Location{ID: 3, Continent: "Asia", City: "c", Reports: []*weather.Report{{}}}},
		{"zero m2m value element", &weather.Location{ID: 4, Continent: "Asia", City: "d", Tags: []weather.Tag{{}}}},
	}
	for _, c := range cases {
		for _, op := range []string{"insert", "update"} {
			f.reset()
			var err error
			if op == "insert" {
				err = s.Insert(ctx, c.loc)
			} else {
				err = s.Update(ctx, &[]*weather.Location{c.loc})
			}
			if !errors.Is(err, session.ErrRelationDenied) {
				t.Errorf("%s of a location with a %s, under a router denying every relation = %v; want ErrRelationDenied",
					op, c.name, err)
			}
			if n := f.perShard(); !slices.Equal(n, []int{0, 0, 0, 0}) {
				t.Errorf("refused %s sent %v statements", op, n)
			}
		}
	}
	// Nil pointers and empty slices hold no object: nothing to deny.
	if err := s.Insert(ctx, &weather.Location{ID: 5, Continent: "Asia", City: "e"}); err != nil {
		t.Errorf("Insert of a location without related objects = %v", err)
	}
}
