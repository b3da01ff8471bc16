package session

import (
	"context"
	"fmt"
	"slices"

	"github.com/bunshard/bunshard/chooser"
)

// Route says where a statement runs and why: the shards in order, and which
// rule picked them ("option", "using", "context" or "chooser").
type Route struct {
	Shards []ShardID
	By     string
}

// String renders the route as "[asia europe] by chooser".
func (r Route) String() string { return fmt.Sprintf("%v by %s", r.Shards, r.By) }

// pinned reports whether the route is a pin that propagates to relation
// loads of the objects it loads (SetShardID, SetShardIDs, a Using view), as
// SQLAlchemy's set_shard_id does; a context pin does not, like SQLAlchemy's
// bind_arguments.
func (r Route) pinned() bool { return r.By == "option" || r.By == "using" }

// mark returns what objects loaded from shard id by this route record.
func (r Route) mark(id ShardID) mark { return mark{id: id, pinned: r.pinned()} }

// route resolves where a statement goes, in precedence order: a statement
// option, the Using view, the context, then the chooser (called lazily, so a
// pinned statement never asks it). The result has no repeats and only known
// shards; an empty answer is ErrNoShard.
func (s *Session) route(ctx context.Context, o *stmtOptions, what string, choose func() (chooser.Target, error)) (Route, error) {
	switch {
	case len(o.shards) > 0:
		return s.checked(o.shards, "option", what)
	case len(s.pin) > 0:
		return s.checked(s.pin, "using", what)
	}
	if id, ok := ShardIDFromContext(ctx); ok {
		return s.checked([]ShardID{id}, "context", what)
	}
	t, err := choose()
	if err != nil {
		return Route{}, fmt.Errorf("session: %s: %w", what, err)
	}
	var r Route
	switch {
	case t.IsAll():
		r = Route{Shards: s.order, By: "chooser"}
	case t.IsNone():
		return Route{}, fmt.Errorf("%w: %s: the chooser answered %v", ErrNoShard, what, t)
	default:
		if r, err = s.checked(t.List(), "chooser", what); err != nil {
			return Route{}, err
		}
	}
	guard := o.scatter == scatterDeny || (s.cfg.noScatter && o.scatter != scatterAllow)
	if guard && len(s.order) > 1 && len(r.Shards) == len(s.order) {
		return Route{}, fmt.Errorf("%w: %s: the chooser sends it to all %d shards; declare a shard key "+
			"(WhereShardKey), pin a shard, or allow it with AllowScatter", ErrScatter, what, len(s.order))
	}
	return r, nil
}

// checked validates ids and drops repeats (keeping first occurrences), so a
// chooser that names a shard twice does not query it twice.
func (s *Session) checked(ids []ShardID, by, what string) (Route, error) {
	out := ids
	for i, id := range ids {
		if _, ok := s.shards[id]; !ok {
			return Route{}, s.unknown(id, what+" ("+by+")")
		}
		if slices.Contains(ids[:i], id) {
			if len(out) == len(ids) {
				out = slices.Clone(ids[:i])
			}
			continue
		}
		if len(out) != len(ids) {
			out = append(out, id)
		}
	}
	return Route{Shards: out, By: by}, nil
}

func options(opts []StatementOption) stmtOptions {
	var o stmtOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
