package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// byValueLocation is a location whose has-one station is held by value, so
// an unset station is a zero struct, not a nil pointer.
type byValueLocation struct {
	bun.BaseModel `bun:"table:weather_locations"`
	identity.Token

	ID        int64  `bun:",pk"`
	Continent string `bun:",notnull"`
	City      string `bun:",notnull"`

	Station weather.Station `bun:"rel:has-one,join:id=location_id"`
}

// denyRelations places every object on asia and denies every relation.
type denyRelations struct{}

func (denyRelations) ChooseShard(context.Context, *schema.Table, any) (identity.ShardID, error) {
	return "asia", nil
}

func (denyRelations) AllowRelation(context.Context, chooser.Object, chooser.Object) chooser.Verdict {
	return chooser.Deny
}

func (denyRelations) String() string { return "denyRelations" }

// TestZeroByValueRelationHoldsNothing: a relation field held by value and
// left zero holds no object, for Session.Insert as for a unit's flush (one
// relation walker): neither asks the RelationRouter about it, and both
// refuse a set one. Before, Session.Insert asked about the zero struct (and
// was denied) while the flush skipped it.
func TestZeroByValueRelationHoldsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s, err := session.New(f.shards, denyRelations{}, chooser.All, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &byValueLocation{ID: 900, Continent: "Asia", City: "zero"}); err != nil {
		t.Errorf("Insert with a zero by-value station = %v; want nil (a zero struct holds no object)", err)
	}
	u := s.Begin()
	if err := u.Add(&byValueLocation{ID: 901, Continent: "Asia", City: "zero"}); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(ctx); err != nil {
		t.Errorf("unit Commit with a zero by-value station = %v; want nil", err)
	}
	if got := f.rowsOn(t, "asia", "weather_locations"); len(got) != 2 || got[0] != 900 || got[1] != 901 {
		t.Errorf("weather_locations on asia = %v; want [900 901]", got)
	}
	if got := f.rowsOn(t, "asia", "stations"); len(got) != 0 {
		t.Errorf("stations on asia = %v; want none (a zero struct is not an object to insert)", got)
	}

	set := func(id int64) *byValueLocation {
		return &byValueLocation{ID: id, Continent: "Asia", City: "set", Station: weather.Station{ID: id, LocationID: id, Name: "s"}}
	}
	if err := s.Insert(ctx, set(902)); !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("Insert with a set by-value station = %v; want ErrRelationDenied", err)
	}
	u = s.Begin()
	if err := u.Add(set(903)); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(ctx); !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("unit Commit with a set by-value station = %v; want ErrRelationDenied", err)
	}
}
