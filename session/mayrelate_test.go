package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// relVerdict is a ShardChooser that is a RelationRouter giving one verdict.
type relVerdict struct {
	chooser.ShardChooser
	v chooser.Verdict
}

func (r relVerdict) AllowRelation(context.Context, chooser.Object, chooser.Object) chooser.Verdict {
	return r.v
}

func (r relVerdict) String() string { return fmt.Sprintf("relVerdict(%v)", r.v) }

// TestOneRelationDecision: a unit's flush, Session.Insert and
// Session.AllowRelation give one answer about the same link (a report on
// shard b holding a location on shard a), whatever the ShardChooser: no
// RelationRouter, chooser.Routers with no relation router, and a
// RelationRouter that abstains all deny it (the one default,
// chooser.SameShard); a RelationRouter that allows allows it everywhere.
// AllowCrossShard lets a unit link it unless a router denies (Routers,
// which answer with the default themselves, deny). A report on
// its location's shard is allowed on every path.
func TestOneRelationDecision(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	base := chooser.First(plPlace, chooser.NewValueMap("region", map[string]session.ShardID{
		"a": "a", "b": "b", "c": "c", "d": "d",
	}))
	for i, c := range []struct {
		name string
		sc   chooser.ShardChooser
		deny bool
	}{
		{"no RelationRouter", base, true},
		{"Routers' default", chooser.NewRouters(base), true},
		{"a RelationRouter that abstains", relVerdict{base, chooser.Abstain}, true},
		{"a RelationRouter that allows", relVerdict{base, chooser.Allow}, false},
		{"a RelationRouter that denies", relVerdict{base, chooser.Deny}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := r.session(t, c.sc)
			id := int64(100 * (i + 1))
			loc := &plLocation{ID: id, Region: "a", City: "x"}
			if err := s.Insert(ctx, loc); err != nil {
				t.Fatal(err)
			}
			if got, ok := loc.Shard(); !ok || got != "a" {
				t.Fatalf("location placed on %q; want a", got)
			}
			verdict := func(what string, err error) {
				t.Helper()
				switch {
				case c.deny && !errors.Is(err, session.ErrRelationDenied):
					t.Errorf("%s = %v; want ErrRelationDenied", what, err)
				case !c.deny && err != nil:
					t.Errorf("%s = %v; want it allowed", what, err)
				}
			}
			remote := func(n int64) *plReport {
				rep := &plReport{ID: id + n, LocationID: id, Location: loc}
				rep.SetShard("b")
				return rep
			}

			// Session.AllowRelation.
			ok, err := s.AllowRelation(ctx, remote(0), loc)
			if err != nil || ok == c.deny {
				t.Errorf("AllowRelation(report on b, location on a) = %v, %v; want %v", ok, err, !c.deny)
			}
			if ok, err := s.AllowRelation(ctx, &plReport{ID: id, Location: loc}, loc); err != nil || ok != (c.name != "a RelationRouter that denies") {
				t.Errorf("AllowRelation(unplaced report, location on a) = %v, %v", ok, err)
			}

			// Session.Insert, pinned to b.
			r.reset()
			err = s.Insert(ctx, remote(1), session.SetShardID("b"), session.PinWins())
			verdict("Insert of a report on b holding a location on a", err)
			if c.deny {
				if got := r.perShard(); !slices.Equal(got, []int{0, 0, 0, 0}) {
					t.Errorf("the refused Insert ran %v statements; want none", got)
				}
			}

			// A unit's flush.
			u := s.Begin()
			if err := u.Add(remote(2)); err != nil {
				t.Fatal(err)
			}
			r.reset()
			verdict("unit Flush of a report on b holding a location on a", u.Flush(ctx))
			if c.deny {
				if got := r.perShard(); !slices.Equal(got, []int{0, 0, 0, 0}) {
					t.Errorf("the refused Flush ran %v statements; want none", got)
				}
			}
			_ = u.Rollback(ctx)

			// AllowCrossShard allows what only the default denies.
			u = s.Begin(session.AllowCrossShard())
			if err := u.Add(remote(3)); err != nil {
				t.Fatal(err)
			}
			err = u.Flush(ctx)
			// Routers never abstain (their default is SameShard's verdict),
			// so their Deny stands as any router's does.
			if wantDeny := c.name == "a RelationRouter that denies" || c.name == "Routers' default"; wantDeny != errors.Is(err, session.ErrRelationDenied) || !wantDeny && err != nil {
				t.Errorf("AllowCrossShard unit Flush = %v; want denied %v", err, wantDeny)
			}
			_ = u.Rollback(ctx)

			// On the location's shard, every path allows it.
			same := &plReport{ID: id + 4, LocationID: id, Location: loc}
			if err := s.Insert(ctx, same); err != nil && c.name != "a RelationRouter that denies" {
				t.Errorf("Insert of a report on its location's shard = %v", err)
			}
		})
	}
}
