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
// routes a write that declares WhereShardKey(column, value) (or the pin, if
// the statement is pinned). A route of several shards (a chooser that
// cannot tell, a reference table) is [ErrAmbiguous] naming them; the value
// is converted to the column's type as for WhereShardKey. The handle
// autocommits; inside a unit use [UnitOfWork.DBForKey].
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
	return p.Shards[0], nil
}
