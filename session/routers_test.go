package session_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// routed is four database-per-shard shards holding the layout tests' tables
// (without foreign keys), each with a statement counter.
type routed struct {
	shards map[session.ShardID]bun.IDB
	counts map[session.ShardID]*counter
}

func newRouted(t *testing.T) *routed {
	t.Helper()
	ctx := context.Background()
	d := pgdialect.New()
	d.Tables().Register((*plLocationTag)(nil))
	dsns := pgtest.Shared().NewDatabases(ctx, t, "routed")
	r := &routed{shards: map[session.ShardID]bun.IDB{}, counts: map[session.ShardID]*counter{}}
	for i, id := range plShards {
		c := &counter{}
		r.shards[id] = plOpen(t, d, dsns[i], "", "").(*bun.DB).WithQueryHook(c)
		r.counts[id] = c
	}
	s := r.session(t, plPlace)
	if err := s.CreateTables(ctx, plModels); err != nil {
		t.Fatal(err)
	}
	r.reset()
	return r
}

func (r *routed) session(t *testing.T, sc chooser.ShardChooser) *session.Session {
	t.Helper()
	routers := plRouters()
	s, err := session.New(r.shards, sc, routers, routers, session.WithShardOrder(plShards...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r *routed) reset() {
	for _, c := range r.counts {
		c.reset()
	}
}

func (r *routed) perShard() []int {
	out := make([]int, len(plShards))
	for i, id := range plShards {
		out[i] = len(r.counts[id].statements())
	}
	return out
}

// TestRoutersRouteByModel: a router keeps one model on one shard for reads,
// writes and statements, while the default chooser routes the others.
func TestRoutersRouteByModel(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	s := r.session(t, plRouters())

	settings := []*plSetting{{Name: "motd", Value: "hi"}, {Name: "theme", Value: "dark"}}
	if err := s.Insert(ctx, &settings); err != nil {
		t.Fatal(err)
	}
	if got := r.perShard(); !slices.Equal(got, []int{1, 0, 0, 0}) {
		t.Errorf("Insert of settings ran %v statements; want one on a", got)
	}
	r.reset()
	var got plSetting
	if err := s.Get(ctx, &got, "theme"); err != nil || got.Value != "dark" {
		t.Fatalf("Get(theme) = %+v, %v", got, err)
	}
	var all []plSetting
	if err := s.NewSelect().Model(&all).Order("name").Scan(ctx); err != nil || len(all) != 2 {
		t.Fatalf("select settings = %v, %v", all, err)
	}
	res, err := s.NewUpdate().Model((*plSetting)(nil)).Set("value = upper(value)").Where("TRUE").Exec(ctx)
	if err != nil || res.RowsAffected != 2 {
		t.Fatalf("update settings = %+v, %v", res, err)
	}
	if got := r.perShard(); !slices.Equal(got, []int{3, 0, 0, 0}) {
		t.Errorf("Get, select and update of settings ran %v statements; want all 3 on a", got)
	}

	// Other models fall through to the default: locations by region.
	r.reset()
	locs := []*plLocation{{ID: 1, Region: "b", City: "x"}, {ID: 2, Region: "d", City: "y"}}
	if err := s.Insert(ctx, &locs); err != nil {
		t.Fatal(err)
	}
	if got := r.perShard(); !slices.Equal(got, []int{0, 1, 0, 1}) {
		t.Errorf("Insert of locations in b and d ran %v statements; want one on b and one on d", got)
	}
	r.reset()
	var inD []plLocation
	if err := s.NewSelect().Model(&inD).WhereShardKey("region", "d").Scan(ctx); err != nil || len(inD) != 1 {
		t.Fatalf("select region d = %v, %v", inD, err)
	}
	if got := r.perShard(); !slices.Equal(got, []int{0, 0, 0, 1}) {
		t.Errorf("select of region d ran %v statements; want one on d", got)
	}
}

// TestRelationCheck: the RelationRouter of the session's ShardChooser is
// asked before an insert or update, and by default refuses a relation that
// crosses shards.
func TestRelationCheck(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	s := r.session(t, plRouters())

	loc := &plLocation{ID: 1, Region: "a", City: "x"}
	if err := s.Insert(ctx, loc); err != nil {
		t.Fatal(err)
	}
	// The report follows its location: allowed.
	if err := s.Insert(ctx, &plReport{ID: 1, LocationID: 1, Location: loc}); err != nil {
		t.Fatalf("Insert of a report on its location's shard = %v", err)
	}
	// Pinned elsewhere, it would refer to a row on another shard: refused
	// before anything is sent. (PinWins, or the pin itself would be refused
	// first, with ErrPinConflict: the chooser places the report on a.)
	r.reset()
	err := s.Insert(ctx, &plReport{ID: 2, LocationID: 1, Location: loc}, session.SetShardID("b"), session.PinWins())
	if !errors.Is(err, session.ErrRelationDenied) {
		t.Fatalf("Insert of a report on b whose location is on a = %v; want ErrRelationDenied", err)
	}
	wantIn(t, err, "PlReport", "shard b", "relation Location", "PlLocation on shard a")
	if got := r.perShard(); !slices.Equal(got, []int{0, 0, 0, 0}) {
		t.Errorf("the refused insert ran %v statements; want none", got)
	}
	// A slice with one bad element is refused whole.
	reps := []*plReport{{ID: 3, LocationID: 1, Location: loc}, {ID: 4, LocationID: 1, Location: loc}}
	if err := s.Update(ctx, &reps, session.SetShardID("c"), session.PinWins()); !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("Update of reports pinned to c = %v; want ErrRelationDenied", err)
	}
	// Has-many and m2m fields are checked too.
	tagB := &plTag{ID: 7, Name: "b's"}
	if err := s.Using("b").Insert(ctx, tagB); err != nil {
		t.Fatal(err)
	}
	withTag := &plLocation{ID: 2, Region: "a", City: "y", Tags: []plTag{*tagB}}
	if err := s.Insert(ctx, withTag); !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("Insert of a location on a tagged with b's tag = %v; want ErrRelationDenied", err)
	}
	// An object that has not been placed is no objection.
	fresh := &plLocation{ID: 3, Region: "a", City: "z", Tags: []plTag{{ID: 8, Name: "new"}}}
	if err := s.Insert(ctx, fresh); err != nil {
		t.Errorf("Insert of a location with an unplaced tag = %v", err)
	}

	// A router that treats tags as global allows them anywhere.
	globalTags := chooser.RelationRouterFunc(func(_ context.Context, a, b chooser.Object) chooser.Verdict {
		if b.Table.Type == reflect.TypeFor[plTag]() {
			return chooser.Allow
		}
		return chooser.Abstain
	})
	lenient := chooser.NewRouters(chooser.First(plPlace), plRouter{}, globalTags)
	s2 := r.session(t, lenient)
	if err := s2.Insert(ctx, withTag); err != nil {
		t.Errorf("Insert with a router allowing global tags = %v", err)
	}
	if ok, err := s2.AllowRelation(ctx, withTag, tagB); !ok || err != nil {
		t.Errorf("AllowRelation(location on a, tag on b) with global tags = %v, %v; want true", ok, err)
	}
	if ok, err := s.AllowRelation(ctx, withTag, tagB); ok || err != nil {
		t.Errorf("AllowRelation(location on a, tag on b) = %v, %v; want false", ok, err)
	}
	if _, err := s.AllowRelation(ctx, withTag, 42); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("AllowRelation(obj, 42) = %v; want ErrInvalidArgument", err)
	}

	// Without a RelationRouter the one default decides as the Routers'
	// does (chooser.SameShard; TestOneRelationDecision has every path).
	plain := r.session(t, plPlace)
	if err := plain.Insert(ctx, &plReport{ID: 5, LocationID: 1, Location: loc}, session.SetShardID("d"), session.PinWins()); !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("Insert across shards without a RelationRouter = %v; want ErrRelationDenied", err)
	}
	if ok, err := plain.AllowRelation(ctx, loc, tagB); ok || err != nil {
		t.Errorf("AllowRelation(location on a, tag on b) without a RelationRouter = %v, %v; want false", ok, err)
	}
}
