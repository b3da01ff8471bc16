package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// Route says where a statement runs and why: the shards in order, and which
// rule picked them ("option", "using", "context" or "chooser"). A statement
// whose WhereShardKey criteria on one column share no value matches no row
// and runs nowhere: no shards, by "criteria".
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
func (r Route) mark(id ShardID) mark {
	pinned := r.pinned()
	return mark{id: id, pinned: pinned, p: identity.Place(id, pinned)}
}

// route resolves where a statement goes, in precedence order: a statement
// option, the Using view, the context, then the chooser (called lazily, so a
// pinned statement never asks it). The result has no repeats and only known
// shards; an empty answer is ErrNoShard, and a pin to no shard is
// ErrInvalidArgument: a pin never falls through to the chooser.
func (s *Session) route(ctx context.Context, o *stmtOptions, what string, choose func() (chooser.Target, error)) (Route, error) {
	ids, by, err := s.pinOf(ctx, o, what)
	if err != nil {
		return Route{}, err
	}
	if ids != nil {
		r, err := s.checked(ids, by, what)
		if err == nil && s.at.unitOf() != nil {
			err = s.at.unitOf().outside(r.Shards, by, what)
		}
		return r, err
	}
	t, err := choose()
	if err != nil {
		return Route{}, fmt.Errorf("session: %s: %w", what, err)
	}
	return s.chosen(o, what, t)
}

// chosen is the route of a chooser's answer t for a statement nothing pins
// (route's second half, for callers that checked the pin once for many
// keys): every shard for AllShards, ErrNoShard for None, the scatter guard
// applied.
func (s *Session) chosen(o *stmtOptions, what string, t chooser.Target) (Route, error) {
	var (
		r   Route
		err error
	)
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
		how := "AllowScatter"
		if strings.HasPrefix(what, "Get ") {
			how = "GetWith(ctx, []StatementOption{AllowScatter()}, ...)"
		}
		return Route{}, fmt.Errorf("%w: %s: the chooser sends it to all %d shards; declare a shard key "+
			"(WhereShardKey), pin a shard, or allow it with %s", ErrScatter, what, len(s.order), how)
	}
	return r, nil
}

// pinOf returns the pin of a statement and what set it ("option", "using"
// or "context"), in precedence order, and nil when nothing pins it. A pin
// that names no shard (SetShardIDs(), Using(), WithShardID(ctx, "")) is an
// error naming it, never "no pin".
func (s *Session) pinOf(ctx context.Context, o *stmtOptions, what string) ([]ShardID, string, error) {
	switch {
	case o.shards != nil:
		if len(o.shards) == 0 {
			return nil, "", fmt.Errorf("%w: %s: SetShardIDs() names no shard; a pin never means every shard "+
				"(leave the option out to let the chooser route)", ErrInvalidArgument, what)
		}
		return o.shards, "option", nil
	case s.at.pinned() != nil:
		if len(s.at.pinned()) == 0 {
			return nil, "", fmt.Errorf("%w: %s: the session view Using() names no shard; a view never means every shard "+
				"(use the session itself to let the chooser route)", ErrInvalidArgument, what)
		}
		return s.at.pinned(), "using", nil
	}
	id, ok := contextPin(ctx)
	switch {
	case !ok:
		return nil, "", nil
	case id == "":
		return nil, "", fmt.Errorf("%w: %s: the context is pinned to the empty shard id by WithShardID(ctx, \"\"); "+
			"a pin never means every shard (use a context without the pin to let the chooser route)", ErrInvalidArgument, what)
	}
	return []ShardID{id}, "context", nil
}

// checked validates ids and drops repeats (keeping first occurrences), so a
// chooser that names a shard twice does not query it twice. The empty id is
// ErrInvalidArgument, another unknown id ErrUnknownShard.
func (s *Session) checked(ids []ShardID, by, what string) (Route, error) {
	out := ids
	for i, id := range ids {
		if _, ok := s.shards[id]; !ok {
			if id == "" {
				return Route{}, fmt.Errorf("%w: %s: the %s names the empty shard id", ErrInvalidArgument, what, pinName(by))
			}
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

// pinName names what set a route, for errors.
func pinName(by string) string {
	switch by {
	case "option":
		return "statement option SetShardID/SetShardIDs"
	case "using":
		return "session view Using"
	case "context":
		return "context pin WithShardID"
	}
	return by
}

func options(opts []StatementOption) stmtOptions {
	var o stmtOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// pinMissesKeys fails a pinned statement whose declared shard keys (WhereShardKey,
// a routing Where, a raw ShardKey) the ExecuteChooser places only on shards the pin
// excludes, with ErrPinConflict: the statement would run where none of its rows
// are, and answer nothing (a tenant's request reading or writing another
// tenant's rows). A chooser that cannot say (an error, every shard, none, an
// unknown shard) proves nothing, and the pin stands. PinWins runs it on the pin
// anyway.
func (s *Session) pinMissesKeys(ctx context.Context, stmt *chooser.Statement, r Route, what string) error {
	t, err := s.executeChooser.ChooseExecute(ctx, stmt)
	if err != nil || t.IsAll() || t.IsNone() {
		return nil
	}
	ids := t.List()
	for _, id := range ids {
		if _, ok := s.shards[id]; !ok || slices.Contains(r.Shards, id) {
			return nil
		}
	}
	var keys []string
	for _, c := range stmt.Criteria {
		keys = append(keys, fmt.Sprintf("%s in %v", c.Column, c.Values))
	}
	return fmt.Errorf("%w: %s: pinned to %v by %s, but its declared shard key (%s) routes to %v, where its rows are: "+
		"on the pin it would find none; drop the pin or the key, or add PinWins() to run it on the pin anyway",
		ErrPinConflict, what, r.Shards, pinName(r.By), strings.Join(keys, ", "), ids)
}
