package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// genLocation is a location whose id comes from the identity.Generator of
// its shard, set by BeforeShardInsert as SQLAlchemy's id_generator column
// default does.
type genLocation struct {
	bun.BaseModel `bun:"table:weather_locations"`
	identity.Token

	ID        int64  `bun:",pk"`
	Continent string `bun:",notnull"`
	City      string `bun:",notnull"`

	gens  map[session.ShardID]*identity.Generator `bun:"-"`
	calls *[]string                               `bun:"-"`
	move  bool                                    `bun:"-"` // the hook moves the object to Europe
}

func (l *genLocation) BeforeShardInsert(ctx context.Context, shard session.ShardID) error {
	*l.calls = append(*l.calls, fmt.Sprintf("%s@%s", l.City, shard))
	if id, ok := session.ShardIDFromContext(ctx); !ok || id != shard {
		return fmt.Errorf("ctx names shard %q; want %s", id, shard)
	}
	if l.move {
		l.Continent = "Europe"
	}
	if l.ID != 0 {
		return nil
	}
	g, ok := l.gens[shard]
	if !ok {
		return errors.New("no generator")
	}
	var err error
	l.ID, err = g.Next()
	return err
}

var genChooser = chooser.ShardChooserFunc(func(ctx context.Context, t *schema.Table, obj any) (identity.ShardID, error) {
	l, ok := obj.(*genLocation)
	if !ok {
		return "", fmt.Errorf("no rule for %s", t.TypeName)
	}
	return weather.ShardOfContinent[l.Continent], nil
})

// BeforeShardInsert runs once per object after placement and before any
// INSERT, in flush order, for a unit's flush and for Session.Insert; the
// ids it sets are the rows' ids, on the shard whose generator made them.
func TestShardInsertHookFillsIDsFromGenerator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s, err := session.New(f.shards, genChooser, chooser.All, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	layout := identity.DefaultLayout()
	gens := map[session.ShardID]*identity.Generator{}
	for i, id := range weather.Shards {
		if gens[id], err = identity.NewGenerator(layout, i); err != nil {
			t.Fatal(err)
		}
	}
	var calls []string
	mk := func(continent, city string) *genLocation {
		return &genLocation{Continent: continent, City: city, gens: gens, calls: &calls}
	}
	locs := []*genLocation{mk("Asia", "Tokyo"), mk("Europe", "Oslo"), mk("Asia", "Osaka")}
	uow := s.Begin()
	defer uow.Rollback(ctx)
	if err := uow.Add(locs); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Tokyo@asia", "Oslo@europe", "Osaka@asia"}; !slices.Equal(calls, want) {
		t.Errorf("hook calls = %v; want %v", calls, want)
	}
	for _, l := range locs {
		sh, _ := l.Shard()
		if l.ID == 0 || weather.Shards[layout.Bucket(l.ID)] != sh || !slices.Contains(f.rowsOn(t, sh, "weather_locations"), l.ID) {
			t.Errorf("%s: id %d (bucket %d) on %s; want a nonzero id of that shard's bucket, stored there", l.City, l.ID, layout.Bucket(l.ID), sh)
		}
	}

	calls = nil
	one := mk("South America", "Lima")
	if err := s.Insert(ctx, one); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{"Lima@south_america"}) || layout.Bucket(one.ID) != 3 ||
		!slices.Contains(f.rowsOn(t, "south_america", "weather_locations"), one.ID) {
		t.Errorf("Session.Insert: calls %v, id %d; want one call and an id of bucket 3 stored on south_america", calls, one.ID)
	}

	// A hook that changes the chooser's answer is refused before sending.
	f.reset()
	moved := mk("Asia", "Kyoto")
	moved.move = true
	err = s.Insert(ctx, moved)
	if !errors.Is(err, session.ErrInvalidArgument) || !strings.Contains(err.Error(), "BeforeShardInsert changed") {
		t.Errorf("Insert whose hook moves the object = %v; want ErrInvalidArgument naming BeforeShardInsert", err)
	}
	moved.Continent, moved.ID = "Asia", 0 // as before the refused Insert
	if err := uow.Add(moved); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Flush whose hook moves the object = %v; want ErrInvalidArgument", err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused hooks sent %v statements; want none", c)
	}
}
