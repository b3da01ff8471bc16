package session

import (
	"context"
	"fmt"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// mayRelate is bunshard's one decision whether a may be related to b (one
// held in a relation field of the other), used by a unit's flush, by
// Session.Insert and Update (and NewInsert, NewUpdate on objects), and by
// [Session.AllowRelation]:
//
//   - when the session's ShardChooser is a chooser.RelationRouter that
//     gives Allow or Deny, that verdict stands (AllowCrossShard does not
//     overrule a Deny);
//   - when it abstains, or the ShardChooser is no RelationRouter, the
//     default decides: chooser.SameShard, which denies a link between
//     objects placed on two different shards and allows the rest (either
//     not placed yet, or both on one shard), unless crossShard (a unit made
//     with AllowCrossShard) allows any link.
//
// When it denies, by says why, for the error: what denied it and how to
// allow it.
func (s *Session) mayRelate(ctx context.Context, a, b chooser.Object, crossShard bool) (ok bool, by string) {
	if rr := s.relRouter; rr != nil {
		switch rr.AllowRelation(ctx, a, b) {
		case chooser.Allow:
			return true, ""
		case chooser.Deny:
			return false, fmt.Sprintf("%v denies the relation", s.shardChooser)
		}
	}
	if crossShard || chooser.SameShard(a, b) == chooser.Allow {
		return true, ""
	}
	return false, "keep related objects on one shard (place the child with chooser.FollowParent, or add it to " +
		"its parent's relation), or allow it with a chooser.RelationRouter (or, in a unit, AllowCrossShard)"
}

// setShard records id on tok, as tok.SetShard(id) does, with the
// session's own Placement of id when it has one.
func (s *Session) setShard(tok *identity.Token, id ShardID) {
	if p := s.placements[id]; p != nil {
		tok.SetPlacement(p)
		return
	}
	tok.SetShard(id)
}
