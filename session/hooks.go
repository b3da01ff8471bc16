package session

import (
	"context"
	"fmt"
	"reflect"
)

// ShardInsertHook is implemented by a model whose new objects fill columns
// once their shard is known, just before they are inserted, as a column
// default computed in the program would (SQLAlchemy's Python-side column
// default, such as the id_generator of its sharding examples): for example
// an id from an identity.Generator whose bucket is the shard's.
//
// BeforeShardInsert is called once per object per insert, after the object
// is placed on shard and before any statement of the flush (or of
// Session.Insert) is sent, in the order the objects are inserted (parents
// before children, so a child's foreign key is filled from the key its
// parent's hook set). A flush that is refused or fails and is tried again
// calls it again: leave a column that is set already alone. An error stops
// the flush or Insert before anything is sent, naming the model. When the
// object was placed by the ShardChooser (no pin, Token or parent decided),
// the chooser is asked again afterwards, and a hook that changed its
// answer fails with [ErrInvalidArgument]: the object would be stored where
// its reads do not look (set the columns the chooser reads before Add).
type ShardInsertHook interface {
	BeforeShardInsert(ctx context.Context, shard ShardID) error
}

// LoadHook is implemented by a model that wants to know where its objects
// come from, SQLAlchemy's load event (whose context tells the shard id of
// each row, test_shard_id_event).
//
// OnLoad is called exactly once per object a select, Get or LoadRelation
// returns (the objects of its relations included), with the shard the
// object's row was read from, after the object is merged into the unit's
// identity map: within a unit it is called on the object handed out (the
// tracked one when the row was tracked already; and only for the rows the
// statement read: an identity-map hit reads nothing). The order is that of
// the results: each parent, then the objects its relations hold, depth
// first, in field order. Bun's AfterScanRow hook, by contrast, runs once
// per row scanned, on every shard's goroutine as rows arrive.
type LoadHook interface {
	OnLoad(ctx context.Context, shard ShardID)
}

// beforeInsert calls obj's BeforeShardInsert, if its model has one, with
// the shard id it is placed on. rechoose, when not nil, asks the
// ShardChooser again afterwards (the object was placed by it), and a
// different answer is an error. at is the object's index for errors (-1
// for a single object).
func (s *Session) beforeInsert(ctx context.Context, op string, mi *modelInfo, obj reflect.Value, id ShardID, at int,
	rechoose func() (ShardID, error),
) error {
	if !mi.insertHook {
		return nil
	}
	h, ok := obj.Addr().Interface().(ShardInsertHook)
	if !ok {
		return nil
	}
	if err := h.BeforeShardInsert(WithShardID(ctx, id), id); err != nil {
		return fmt.Errorf("session: %s %s: BeforeShardInsert on shard %s: %w", op, describe(mi, obj, at), id, err)
	}
	if rechoose == nil {
		return nil
	}
	again, err := rechoose()
	if err != nil {
		return err
	}
	if again != id {
		return fmt.Errorf("%w: %s %s: BeforeShardInsert changed where the ShardChooser places the object (shard %s, "+
			"now %s): it would be stored where its reads do not look; set the columns the chooser reads before the insert",
			ErrInvalidArgument, op, describe(mi, obj, at), id, again)
	}
	return nil
}

// rechooser returns the call that asks the ShardChooser again where obj
// goes, when placeObject left the choice to it (no pin, no shard on the
// object's Token), else nil.
func (s *Session) rechooser(ctx context.Context, op string, mi *modelInfo, obj reflect.Value, pin writePin, at int) func() (ShardID, error) {
	if pin.id != "" {
		return nil
	}
	if tok := mi.token(obj); tok != nil {
		if _, ok := tok.Shard(); ok {
			return nil
		}
	}
	return func() (ShardID, error) { return s.placeObject(ctx, op, mi, obj, writePin{}, at) }
}
