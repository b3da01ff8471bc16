package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/identity"
)

// IdentityKey is an object's identity in a unit of work: its model type,
// its primary key and the shard it is stored on, SQLAlchemy's identity key
// (class, pk, identity token). Key.Shard is the identity token.
type IdentityKey = identity.Key

// IdentityKey returns the identity key of obj (a *T the unit tracks as
// stored: loaded, or inserted by a flush), SQLAlchemy's
// inspect(obj).identity_key. It sends nothing. It fails with
// [ErrNotTracked] for an object the unit does not track, or tracks as new
// (not yet flushed: it has no key yet).
func (u *UnitOfWork) IdentityKey(obj any) (IdentityKey, error) {
	if err := u.enter(opIdentityKey); err != nil {
		return IdentityKey{}, err
	}
	defer u.leave()
	e, ok := u.lookup(obj)
	if !ok || e.st == nil || e.state == statePending {
		return IdentityKey{}, fmt.Errorf("%w: IdentityKey %T: the unit does not track it as stored on a shard (flush it first)", ErrNotTracked, obj)
	}
	return e.st.key, nil
}

// IdentityKey returns the identity key of obj (a *T of a registered model
// with a primary key) from its primary key and the shard its Token records
// (where it was loaded from or written to), as the unit of work would key
// it. It sends nothing. It fails with [ErrInvalidArgument] for an object
// that is not a model with a primary key, or whose model has no Token, or
// whose Token has no shard yet.
func (s *Session) IdentityKey(obj any) (IdentityKey, error) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return IdentityKey{}, fmt.Errorf("%w: IdentityKey: want a *T of a model; got %T", ErrInvalidArgument, obj)
	}
	mi, err := s.info(v.Elem().Type())
	if err != nil {
		return IdentityKey{}, fmt.Errorf("session: IdentityKey: %w", err)
	}
	if len(mi.table.PKs) == 0 {
		return IdentityKey{}, fmt.Errorf("%w: IdentityKey: model %s has no primary key", ErrInvalidArgument, mi.table.TypeName)
	}
	id := shardOfLoaded(mi, v.Elem())
	if id == "" {
		return IdentityKey{}, fmt.Errorf("%w: IdentityKey %s: no shard on its Token (the model has no Token, or the object "+
			"was never loaded or written)", ErrInvalidArgument, mi.table.TypeName)
	}
	return identity.NewKey(mi.typ, id, pkOf(mi, v.Elem())...), nil
}

// ExpungeAll stops tracking every object, as Expunge does for each: their
// pending inserts, updates and deletes are forgotten, and later loads
// return fresh objects. The unit's transactions stay open, with whatever
// earlier flushes wrote. It sends nothing.
func (u *UnitOfWork) ExpungeAll() error {
	if err := u.enter(opExpunge); err != nil {
		return err
	}
	defer u.leave()
	u.expungeAll()
	return nil
}

func (u *UnitOfWork) expungeAll() {
	for _, e := range u.tracked {
		e.state, e.indexed = stateDetached, false
	}
	u.tracked, u.objs, u.unindexed = nil, map[any]*entry{}, false
	u.ids.Clear()
}

// ExpireAll expires every object the unit tracks as stored, as
// SQLAlchemy's expire_all: their unflushed changes are discarded (the next
// flush does not write them), and the next Get, select or LoadRelation of
// the unit that reaches an expired object's row overwrites its columns with
// the row (Get sends one SELECT on the object's shard for it, instead of
// none). Go has no attribute access to hook, so an expired object keeps its
// old values in memory until then; changes made to it after ExpireAll are
// kept by that reload and flushed. Relations are not reloaded. New objects
// (not yet flushed) are not touched. It sends nothing.
func (u *UnitOfWork) ExpireAll() error {
	if err := u.enter(opExpire); err != nil {
		return err
	}
	defer u.leave()
	for _, e := range u.tracked {
		u.expire(e)
	}
	return nil
}

// expire marks e expired, discarding its unflushed changes: its snapshot
// becomes what it holds now, so only later changes differ from it.
func (u *UnitOfWork) expire(e *entry) {
	if e.state != statePersistent || e.st == nil || e.st.snap == nil {
		return
	}
	if cols, _ := u.changes(e); len(cols) > 0 {
		old := e.st.snap
		e.st.snap = u.snapshot(e.mi, e.val())
		e.st.snap.links = old.links
	}
	e.expired = true
}

// reload reads the expired e's row on its shard and merges it into e (see
// merge). A row that is gone expunges e and gives an error satisfying
// errors.Is(err, sql.ErrNoRows).
func (u *UnitOfWork) reload(ctx context.Context, e *entry) error {
	fresh := reflect.New(e.mi.typ)
	for _, f := range e.mi.table.PKs {
		f.Value(fresh.Elem()).Set(f.Value(e.val()))
	}
	u.noflush++ // merge keeps the object's changes; nothing needs flushing first
	err := u.view.fanOut(ctx, []ShardID{e.shard}, "reload", func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
		return db.NewSelect().Model(fresh.Interface()).WherePK().Scan(ctx)
	})
	u.noflush--
	if errors.Is(err, sql.ErrNoRows) {
		u.detach(e)
		return fmt.Errorf("session: Get %s: the expired object's row %v is gone: %w", e.mi.table.TypeName, e.st.key, sql.ErrNoRows)
	}
	if err != nil {
		return err
	}
	u.merge(e, fresh.Elem())
	return nil
}

// merge overwrites the columns of the expired e with those of v, its row
// as just loaded, except the columns changed since e was expired (they
// differ from its snapshot), which are kept; v becomes e's snapshot, so the
// kept changes are flushed. e is no longer expired.
func (u *UnitOfWork) merge(e *entry, v reflect.Value) {
	changed, _ := u.changes(e)
	dst := e.val()
	for _, c := range e.mi.unit(u.s).cols {
		if slices.Contains(changed, c.f) {
			continue
		}
		to, from := fieldOf(dst, c.f), fieldOf(v, c.f)
		if to.IsValid() && from.IsValid() {
			to.Set(from)
		}
	}
	old := e.st.snap
	e.st.snap = u.snapshot(e.mi, v)
	if old != nil {
		e.st.snap.links = old.links
	}
	e.expired = false
}

// rolledBack updates the identity map after every shard's transaction was
// rolled back, as SQLAlchemy's rollback does: objects added or inserted in
// the transaction are expunged (their rows are gone), and so are the stored
// objects on shards it wrote on (their rows may no longer match them: an
// update, a statement, or a DB handle wrote there); pending deletes are
// cancelled; the other stored objects are expired with their unflushed
// changes discarded. written holds the shards the transaction wrote on.
func (u *UnitOfWork) rolledBack(written map[ShardID]bool) {
	for _, e := range u.inserted {
		if e.state != stateDetached {
			u.detach(e)
		}
	}
	u.inserted = nil
	for _, e := range u.tracked {
		switch {
		case e.state == stateDetached:
		case e.state == statePending, e.st == nil, e.st.snap == nil, written[e.shard]:
			u.detach(e)
		default:
			e.state = statePersistent // a pending Delete is cancelled
			u.expire(e)
		}
	}
	u.tracked = slices.DeleteFunc(u.tracked, func(e *entry) bool { return e.state == stateDetached })
}

// committed updates the identity map after Commit: the unit's inserts are
// its own now, and its stored objects are expired unless the unit keeps
// them (ExpireOnCommit(false)).
func (u *UnitOfWork) committed() {
	u.inserted = nil
	if u.cfg.keep {
		return
	}
	for _, e := range u.tracked {
		if e.state == statePersistent && e.st != nil && e.st.snap != nil {
			e.expired = true // a flush just took its snapshot: nothing to discard
		}
	}
}
