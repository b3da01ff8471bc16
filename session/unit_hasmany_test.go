package session_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// HMParent and HMKid are a has-many whose foreign key is nullable (a
// pointer), the case where removing a child sets its key to NULL.
type HMParent struct {
	bun.BaseModel `bun:"table:hm_parents"`
	identity.Token

	ID        int64    `bun:",pk"`
	Continent string   `bun:",notnull"`
	Kids      []*HMKid `bun:"rel:has-many,join:id=parent_id"`
}

type HMKid struct {
	bun.BaseModel `bun:"table:hm_kids"`
	identity.Token

	ID       int64     `bun:",pk"`
	ParentID *int64    // nullable
	Name     string    `bun:",notnull"`
	Parent   *HMParent `bun:"rel:belongs-to,join:parent_id=id"`
}

// containing returns, per shard in weather.Shards order, the statements
// run since reset whose SQL contains part.
func (f *fixture) containing(part string) []int {
	out := make([]int, len(weather.Shards))
	for i, id := range weather.Shards {
		for _, q := range f.counts[id].statements() {
			if strings.Contains(q, part) {
				out[i]++
			}
		}
	}
	return out
}

func hmTables(t *testing.T, f *fixture) {
	t.Helper()
	for _, id := range weather.Shards {
		for _, m := range []any{(*HMParent)(nil), (*HMKid)(nil)} {
			if _, err := f.shards[id].NewCreateTable().Model(m).WithForeignKeys().Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// parentsOn returns, per kid id on shard id, its parent_id (0 for NULL).
func kidParents(t *testing.T, f *fixture, id session.ShardID) map[int64]int64 {
	t.Helper()
	var rows []struct {
		ID       int64
		ParentID *int64
	}
	if err := f.shards[id].NewSelect().Table("hm_kids").Column("id", "parent_id").Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	out := map[int64]int64{}
	for _, r := range rows {
		out[r.ID] = 0
		if r.ParentID != nil {
			out[r.ID] = *r.ParentID
		}
	}
	return out
}

// Removing a stored child from a stored parent's has-many, moving it to
// another parent and clearing the field write the children on the
// parent's shard, as SQLAlchemy's default cascade does: a removed child's
// nullable foreign key becomes NULL, a moved child gets its new parent's
// key. Before, none of these wrote anything (a flush saw no change).
func TestUnitHasManyRemoveMoveClear(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	hmTables(t, f)
	s := f.followSession(t)
	seed := []*HMParent{
		{ID: 1, Continent: "Asia", Kids: []*HMKid{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}, {ID: 3, Name: "c"}}},
		{ID: 2, Continent: "Asia", Kids: []*HMKid{{ID: 4, Name: "d"}}},
		{ID: 3, Continent: "Europe", Kids: []*HMKid{{ID: 5, Name: "e"}}},
	}
	su := s.Begin()
	if err := su.Add(seed[0], seed[1], seed[2]); err != nil {
		t.Fatal(err)
	}
	if err := su.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kidParents(t, f, "asia"); !maps.Equal(got, map[int64]int64{1: 1, 2: 1, 3: 1, 4: 2}) {
		t.Fatalf("seeded kids on asia = %v", got)
	}

	uow := s.Begin()
	defer uow.Rollback(ctx)
	var ps []*HMParent
	if err := uow.NewSelect().Model(&ps).Relation("Kids", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).
		Where("continent = ?", "Asia").Order("id").Scan(ctx); err != nil || len(ps) != 2 {
		t.Fatalf("load = %d parents, %v", len(ps), err)
	}
	one, two := ps[0], ps[1]
	kid1, kid2 := one.Kids[0], one.Kids[1]
	one.Kids = []*HMKid{one.Kids[2]}  // remove kid 1, move kid 2 ...
	two.Kids = append(two.Kids, kid2) // ... to parent 2
	f.reset()
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if got := kidParents(t, f, "asia"); !maps.Equal(got, map[int64]int64{1: 0, 2: 2, 3: 1, 4: 2}) {
		t.Errorf("kids on asia after remove and move = %v; want 1 NULL, 2 under parent 2", got)
	}
	if kid1.ParentID != nil || kid2.ParentID == nil || *kid2.ParentID != 2 {
		t.Errorf("in memory: kid1.ParentID = %v, kid2.ParentID = %v; want nil and 2", kid1.ParentID, kid2.ParentID)
	}
	if c := f.containing(`UPDATE "hm_kids"`); !slices.Equal(c, []int{0, 1, 0, 0}) { // one statement: same column, the values per row
		t.Errorf("UPDATEs per shard = %v; want one on asia only", c)
	}
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("second Flush ran %v statements; want none", c)
	}

	two.Kids = nil // clear
	f.reset()
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if got := kidParents(t, f, "asia"); !maps.Equal(got, map[int64]int64{1: 0, 2: 0, 3: 1, 4: 0}) {
		t.Errorf("kids on asia after clear = %v; want 2 and 4 NULL", got)
	}
	if c := f.containing(`UPDATE "hm_kids"`); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("clear: UPDATEs per shard = %v; want one on asia", c)
	}
	if got := kidParents(t, f, "europe"); !maps.Equal(got, map[int64]int64{5: 3}) {
		t.Errorf("kids on europe = %v; want untouched", got)
	}

	// A stored child is not moved between shards.
	var eu []*HMParent
	if err := uow.NewSelect().Model(&eu).Relation("Kids").Where("continent = ?", "Europe").Scan(ctx); err != nil || len(eu) != 1 {
		t.Fatalf("load europe = %d, %v", len(eu), err)
	}
	var k3 *HMKid
	if err := uow.GetWith(ctx, []session.StatementOption{session.SetShardID("asia")}, &k3, 3); err != nil {
		t.Fatal(err)
	}
	eu[0].Kids = append(eu[0].Kids, k3)
	f.reset()
	err := uow.Flush(ctx)
	if !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("append of an asia kid to a europe parent = %v; want ErrRelationDenied", err)
	}
	wantIn(t, err, "HMKid", "asia", "europe", "Kids")
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused flush ran %v statements; want none", c)
	}
}

// A child whose foreign key is NOT NULL cannot be orphaned: removing it
// from its parent's has-many is refused before anything is sent, naming
// the column, as Django offers remove() only on a nullable foreign key;
// deleting it instead (Delete) writes the DELETE on the parent's shard.
// Before, the flush wrote nothing and said nothing.
func TestUnitHasManyRemoveRequiredKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 2, 60))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Relation("Reports").Where("id = ?", 2).Scan(ctx); err != nil || len(locs) != 1 {
		t.Fatalf("load = %d, %v", len(locs), err)
	}
	tokyo := locs[0]
	gone := tokyo.Reports[0]
	tokyo.Reports = tokyo.Reports[1:]
	f.reset()
	err := uow.Flush(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Flush after removing a report = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "Report", "Location.Reports", "location_id", "NOT NULL", "Delete")
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused flush ran %v statements; want none", c)
	}
	if err := uow.Delete(gone); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit after Delete = %v", err)
	}
	if c := f.statementsLike("DELETE"); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("DELETEs per shard = %v; want one on asia", c)
	}
	if slices.Contains(f.rowsOn(t, "asia", "weather_reports"), gone.ID) {
		t.Errorf("report %d still on asia", gone.ID)
	}
}
