package session

import (
	"context"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
)

// DBFor returns the handle of the one shard obj (a pointer to a model
// struct) routes to, so that repository code written against bun.IDB runs
// unchanged on the right shard: the shard on obj's [Token]; else the pin (a
// [SetShardID] option, a Using view, the context); else the shard the
// ShardChooser places obj on. A pinned object the ShardChooser places on
// another shard is [ErrPinConflict] unless opts has [PinWins], as for
// Insert; an object whose Token names another shard than the pin is
// [ErrInvalidArgument]. The handle autocommits, as [Session.DB]'s does;
// inside a unit use [UnitOfWork.DBFor].
func (s *Session) DBFor(ctx context.Context, obj any, opts ...StatementOption) (bun.IDB, error) {
	id, err := s.shardFor(ctx, obj, opts)
	if err != nil {
		return nil, err
	}
	return s.shards[id], nil
}

// DBForKey returns the handle of the one shard that holds the rows of
// model (a (*T)(nil)) whose column equals value, as the ExecuteChooser
// routes a write that declares WhereShardKey(column, value), or the pin (a
// [SetShardID] option, a Using view, the context) if there is one. A pinned
// key the ExecuteChooser routes to one other shard is [ErrPinConflict]
// unless opts has [PinWins], as for a pinned Insert of such an object: the
// handle would write the key's rows where its reads do not look. A route
// of several shards (a chooser that cannot tell, a reference table) is
// [ErrAmbiguous] naming them; the value is converted to the column's type
// as for WhereShardKey. The handle autocommits; inside a unit use
// [UnitOfWork.DBForKey].
func (s *Session) DBForKey(ctx context.Context, model any, column string, value any, opts ...StatementOption) (bun.IDB, error) {
	id, err := s.shardForKey(ctx, model, column, value, opts)
	if err != nil {
		return nil, err
	}
	return s.shards[id], nil
}

// DBFor returns the unit's transaction on the shard obj routes to (begun if
// needed), routed as [Session.DBFor] routes, so that repository code
// written against bun.IDB runs inside the unit on the right shard. The
// shard counts as written: Commit commits what the handle did. A unit
// begun on a Using view refuses a shard outside the view.
func (u *UnitOfWork) DBFor(ctx context.Context, obj any, opts ...StatementOption) (bun.IDB, error) {
	id, err := u.view.shardFor(ctx, obj, opts)
	if err != nil {
		return nil, err
	}
	return u.DB(ctx, id)
}

// DBForKey returns the unit's transaction on the shard model's rows with
// column = value live on, routed as [Session.DBForKey] routes; see
// [UnitOfWork.DBFor].
func (u *UnitOfWork) DBForKey(ctx context.Context, model any, column string, value any, opts ...StatementOption) (bun.IDB, error) {
	id, err := u.view.shardForKey(ctx, model, column, value, opts)
	if err != nil {
		return nil, err
	}
	return u.DB(ctx, id)
}

func (s *Session) shardFor(ctx context.Context, obj any, opts []StatementOption) (ShardID, error) {
	mi, kind, err := s.dest(obj)
	if err != nil {
		return "", fmt.Errorf("session: DBFor: %w", err)
	}
	if kind != destStruct {
		return "", fmt.Errorf("%w: DBFor: obj must be a non-nil pointer to one model struct, got %T", ErrInvalidArgument, obj)
	}
	o := options(opts)
	what := "DBFor " + mi.table.TypeName
	pin, err := s.pinned(ctx, &o, what)
	if err != nil {
		return "", err
	}
	v := reflect.ValueOf(obj).Elem()
	op := "insert" // an object without a shard yet is placed as an Insert places it
	if tok := mi.token(v); tok != nil {
		if _, ok := tok.Shard(); ok {
			op = "update"
		}
	}
	id, err := s.placeObject(ctx, op, mi, v, pin, -1)
	if err == nil && s.at.unitOf() != nil {
		err = s.at.unitOf().outside([]ShardID{id}, pin.by, what+" "+describe(mi, v, -1))
	}
	return id, err
}

func (s *Session) shardForKey(ctx context.Context, model any, column string, value any, opts []StatementOption) (ShardID, error) {
	mi, err := s.modelOf(model)
	if err != nil {
		return "", fmt.Errorf("session: DBForKey: %w", err)
	}
	p, err := s.plan(ctx, chooser.OpUpdate, mi, []chooser.Criterion{{Column: column, Values: []any{value}}}, opts)
	if err != nil {
		return "", err
	}
	if len(p.Shards) != 1 {
		return "", fmt.Errorf("%w: DBForKey %s.%s = %v: routed to %d shards %v by %s; a handle is of one shard "+
			"(declare the shard key the chooser routes %s by, or pin a shard)",
			ErrAmbiguous, mi.table.TypeName, column, value, len(p.Shards), p.Shards, p.By, mi.table.TypeName)
	}
	if p.By != "chooser" && !options(opts).pinWins {
		if err := s.checkKeyPin(ctx, mi, column, value, p); err != nil {
			return "", err
		}
	}
	return p.Shards[0], nil
}

// checkKeyPin asks the ExecuteChooser where the rows of mi with column =
// value live when p, the route of DBForKey, is a pin (p.By names it), and
// fails with ErrPinConflict when the chooser names one other shard: the
// handle would write the key's rows where its reads do not look, as a
// pinned Insert of such an object would (see checkPin). A chooser that
// cannot decide (an error, every shard, several, none) leaves the key to
// the pin: the caller named the shard.
func (s *Session) checkKeyPin(ctx context.Context, mi *modelInfo, column string, value any, p plan) error {
	pin := p.Shards[0]
	stmt := &chooser.Statement{Op: chooser.OpUpdate, Table: mi.table, Criteria: p.criteria}
	t, err := s.executeChooser.ChooseExecute(chooser.WithPin(ctx, pin), stmt)
	if err != nil || t.IsAll() || t.IsNone() || len(t.List()) != 1 || t.List()[0] == pin {
		return nil
	}
	by := "the ExecuteChooser"
	if str, ok := s.executeChooser.(fmt.Stringer); ok {
		by += " " + str.String()
	}
	return fmt.Errorf("%w: DBForKey %s.%s = %v: pinned to shard %s by %s, but %s routes that key to shard %s, "+
		"where its rows live; a pin never sends a key's writes off its own shard: fix the pin, or pass PinWins() "+
		"to take the pin's handle anyway", ErrPinConflict, mi.table.TypeName, column, value, pin,
		writePin{by: p.By}.what(), by, t.List()[0])
}
