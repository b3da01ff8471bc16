package chooser

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Chain is a chooser made of other choosers, asked in order; [First] builds
// it. For each role it asks only the members that implement that role, and
// skips a member that answers "not mine": an error wrapping [ErrNoOpinion],
// [None], or the empty ShardID.
//
// An answer of [AllShards] is not final either: it is what a chooser says
// when it cannot narrow a statement down (no criterion on its column), so
// Chain keeps asking and returns AllShards only if no later member names
// specific shards. This lets First(byID, byUserID) route a statement by
// whichever key it declares.
//
// Chain is immutable and safe for concurrent use if its members are.
//
// Chain is the one chooser chain of this package: [NewRouters] builds its
// router chain as a Chain too, whose leading members are the routers
// (asked as choosers, each answer final, AllShards included) and whose
// last member is the default.
type Chain struct {
	members []any
	shard   []ShardChooser
	ident   []member[IdentityChooser]
	exec    []member[ExecuteChooser]
	split   []Splitter
}

// member is a Chain member in one role; a final member's AllShards ends
// the walk (a router's answer is about the model, not a key).
type member[M any] struct {
	m     M
	final bool
}

var (
	_ ShardChooser    = (*Chain)(nil)
	_ IdentityChooser = (*Chain)(nil)
	_ ExecuteChooser  = (*Chain)(nil)
	_ Splitter        = (*Chain)(nil)
)

// First returns a [Chain] that asks choosers in order and takes the first
// real answer. Each member must implement at least one of [ShardChooser],
// [IdentityChooser], [ExecuteChooser] and [Splitter]; First panics on a nil
// member or one that implements none, a programming error like a type
// mismatch.
//
//	place := chooser.First(fromID, roundRobin) // an ID decides; no ID: take turns
func First(choosers ...any) *Chain {
	c := &Chain{members: append([]any(nil), choosers...)}
	for i, m := range choosers {
		mustBeSet("First: member", i, m)
		if c.add(m, false) == 0 {
			panic(fmt.Sprintf("chooser: First: member %d (%T) is not a ShardChooser, IdentityChooser, ExecuteChooser or Splitter", i, m))
		}
	}
	return c
}

// add adds m in each role it has and returns how many it has.
func (c *Chain) add(m any, final bool) int {
	roles := 0
	if s, ok := m.(ShardChooser); ok {
		c.shard = append(c.shard, s)
		roles++
	}
	if s, ok := m.(IdentityChooser); ok {
		c.ident = append(c.ident, member[IdentityChooser]{s, final})
		roles++
	}
	if s, ok := m.(ExecuteChooser); ok {
		c.exec = append(c.exec, member[ExecuteChooser]{s, final})
		roles++
	}
	if s, ok := m.(Splitter); ok {
		c.split = append(c.split, s)
		roles++
	}
	return roles
}

// ChooseShard returns the first non-empty shard a member chooses. An error
// that does not wrap [ErrNoOpinion] is returned at once. If every member
// passes, the error wraps ErrNoOpinion and the members' own errors.
func (c *Chain) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	var passed []error
	for _, m := range c.shard {
		id, err := m.ChooseShard(ctx, table, obj)
		switch {
		case errors.Is(err, ErrNoOpinion):
			passed = append(passed, err)
		case err != nil:
			return "", err
		case id != "":
			return id, nil
		}
	}
	return "", c.noAnswer("ChooseShard", table, passed)
}

// ChooseIdentity returns the first answer that names shards. Failing that it
// returns [AllShards] if a member did, else an error wrapping [ErrNoOpinion]
// if a member passed with one, else [None]. An error that does not wrap
// ErrNoOpinion is returned at once.
func (c *Chain) ChooseIdentity(ctx context.Context, key Key) (Target, error) {
	return firstTarget(c, c.ident, "ChooseIdentity", key.Table, func(m IdentityChooser) (Target, error) {
		return m.ChooseIdentity(ctx, key)
	})
}

// ChooseExecute resolves a declared IN list value by value (see
// SplitValues) and returns the owners of its values. Otherwise it returns
// the first answer that names shards; failing that [AllShards] if a member
// did, else an error wrapping [ErrNoOpinion] if a member passed with one,
// else [None]. An error that does not wrap ErrNoOpinion is returned at once.
func (c *Chain) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	var table *schema.Table
	exec := c.exec
	if stmt != nil {
		table = stmt.Table
		// Final members (a router chain's routers) come first and answer
		// for the model: one that does is the answer, before any split.
		n := 0
		for n < len(exec) && exec[n].final {
			n++
		}
		if n > 0 {
			t, ok, err := askFinal(exec[:n], func(m ExecuteChooser) (Target, error) { return m.ChooseExecute(ctx, stmt) })
			if err != nil || ok {
				return t, err
			}
			exec = exec[n:]
		}
		// An IN list is resolved value by value, as SplitValues does: the
		// whole list must not go to the first member that owns some of it.
		for _, cr := range stmt.Criteria {
			if len(cr.Values) < 2 || len(c.split) == 0 {
				continue
			}
			parts, order, err := c.split1(ctx, table, cr.Column, cr.Values)
			if err != nil {
				return Target{}, err
			}
			if parts == nil {
				continue
			}
			return Shards(order...), nil
		}
	}
	return firstTarget(c, exec, "ChooseExecute", table, func(m ExecuteChooser) (Target, error) {
		return m.ChooseExecute(ctx, stmt)
	})
}

// firstTarget asks members in order for one role: the first answer that
// names shards wins, and a final member's AllShards too; see
// ChooseIdentity for the rest.
func firstTarget[M any](c *Chain, members []member[M], role string, table *schema.Table, ask func(M) (Target, error)) (Target, error) {
	var all bool
	var passed []error
	for _, m := range members {
		t, err := ask(m.m)
		switch {
		case errors.Is(err, ErrNoOpinion):
			passed = append(passed, err)
		case err != nil:
			return Target{}, err
		case t.IsAll() && m.final:
			return t, nil
		case t.IsAll():
			all = true
		case !t.IsNone():
			return t, nil
		}
	}
	return c.fallback(all, role, table, passed)
}

// askFinal asks final members in order: the first answer other than None
// wins (ok); an error that does not wrap ErrNoOpinion stops the walk.
func askFinal[M any](members []member[M], ask func(M) (Target, error)) (Target, bool, error) {
	for _, m := range members {
		t, err := ask(m.m)
		switch {
		case errors.Is(err, ErrNoOpinion):
		case err != nil:
			return Target{}, false, err
		case !t.IsNone():
			return t, true, nil
		}
	}
	return Target{}, false, nil
}

// SplitValues resolves each value on its own, through the first member
// that has an opinion on it (a Splitter that does not answer "not my
// column" or wrap [ErrNoOpinion]), so that a chain of Ranges then Hash puts
// every value where a row with that value would be placed. It returns nil,
// nil when no member routes column, and an error wrapping ErrNoOpinion when
// some value has no owner.
func (c *Chain) SplitValues(ctx context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	parts, _, err := c.split1(ctx, table, column, values)
	return parts, err
}

// split1 is SplitValues that also returns the owners in the order of the
// values' first appearance.
func (c *Chain) split1(ctx context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, []identity.ShardID, error) {
	var parts map[identity.ShardID][]any
	var order []identity.ShardID
	one := make([]any, 1)
	for _, v := range values {
		one[0] = v
		var passed []error
		var owner identity.ShardID
		routed := false
		for _, m := range c.split {
			p, err := m.SplitValues(ctx, table, column, one)
			switch {
			case errors.Is(err, ErrNoOpinion):
				routed = true
				passed = append(passed, err)
				continue
			case err != nil:
				return nil, nil, err
			case p == nil:
				continue // not this member's column
			}
			for id := range p {
				owner = id
			}
			break
		}
		if owner == "" {
			if !routed {
				return nil, nil, nil // no member routes this column
			}
			return nil, nil, c.noAnswer("SplitValues", table, passed)
		}
		if parts == nil {
			parts = make(map[identity.ShardID][]any)
		}
		if _, seen := parts[owner]; !seen {
			order = append(order, owner)
		}
		parts[owner] = append(parts[owner], v)
	}
	return parts, order, nil
}

func (c *Chain) fallback(all bool, op string, table *schema.Table, passed []error) (Target, error) {
	switch {
	case all:
		return AllShards(), nil
	case len(passed) > 0:
		return Target{}, c.noAnswer(op, table, passed)
	}
	return None(), nil
}

func (c *Chain) noAnswer(op string, table *schema.Table, passed []error) error {
	model := "<nil table>"
	if table != nil {
		model = table.TypeName
	}
	if len(passed) == 0 {
		return fmt.Errorf("chooser: %s: %s: no member answered for model %s: %w", c, op, model, ErrNoOpinion)
	}
	// Each passed error wraps ErrNoOpinion, so the joined error does too.
	return fmt.Errorf("chooser: %s: %s: no member answered for model %s: %w", c, op, model, errors.Join(passed...))
}

// String returns "chooser.First(member, …)", using each member's String
// method when it has one.
func (c *Chain) String() string {
	parts := make([]string, len(c.members))
	for i, m := range c.members {
		if s, ok := m.(fmt.Stringer); ok {
			parts[i] = s.String()
		} else {
			parts[i] = fmt.Sprintf("%T", m)
		}
	}
	return "chooser.First(" + strings.Join(parts, ", ") + ")"
}

// mustBeSet panics, naming what, if m is nil or a typed nil pointer: a
// programming error no caller can handle.
func mustBeSet(what string, i int, m any) {
	if m == nil {
		panic(fmt.Sprintf("chooser: %s %d is nil", what, i))
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		panic(fmt.Sprintf("chooser: %s %d is a nil %T", what, i, m))
	}
}
