package session

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun"
)

// Insert inserts model (a pointer to a model struct, or to a slice of them)
// and records on each object's [Token] the shard it went to.
//
// Each object goes to: the shard pinned by a statement option, a Using view
// or the context; else the shard already on its Token; else the one its
// ShardChooser picks. A slice is split by shard and written with one INSERT
// per shard, the shards in parallel. Values the database generates
// (RETURNING) land in the caller's objects.
//
// Shards are written independently, each in its own implicit transaction: if
// one fails, the others may have committed; the error is a join of
// *ShardError values and says which shards committed. Use a unit of work
// with two-phase commit for all-or-nothing writes across shards.
func (s *Session) Insert(ctx context.Context, model any, opts ...StatementOption) error {
	return s.write(ctx, "insert", model, opts, func(ctx context.Context, db bun.IDB, m any, _ int) error {
		_, err := db.NewInsert().Model(m).Exec(ctx)
		return err
	})
}

// Update updates every column of model's objects (see [Session.Insert] for
// model) by primary key, each on its own shard: the shard on its [Token],
// which wins even when the column the ShardChooser reads has changed since.
// Objects without a Token follow a pin (option, Using, context) or, failing
// that, the ShardChooser. An object whose Token names another shard than the
// pin is an error: rows are never moved between shards silently.
//
// A slice is updated with one statement per shard. If fewer rows match than
// objects were given (the row is gone, or the object was placed on the wrong
// shard), the error satisfies errors.Is(err, sql.ErrNoRows). See Insert for
// what happens when a shard fails.
func (s *Session) Update(ctx context.Context, model any, opts ...StatementOption) error {
	return s.write(ctx, "update", model, opts, func(ctx context.Context, db bun.IDB, m any, n int) error {
		q := db.NewUpdate().Model(m)
		if n == 1 {
			q = q.WherePK()
		} else {
			q = q.Bulk()
		}
		return expectRows(q.Exec(ctx))(n)
	})
}

// Delete deletes model's objects by primary key, each on its own shard,
// routed as [Session.Update] routes. If fewer rows are deleted than objects
// given, the error satisfies errors.Is(err, sql.ErrNoRows).
func (s *Session) Delete(ctx context.Context, model any, opts ...StatementOption) error {
	return s.write(ctx, "delete", model, opts, func(ctx context.Context, db bun.IDB, m any, n int) error {
		return expectRows(db.NewDelete().Model(m).WherePK().Exec(ctx))(n)
	})
}

func expectRows(res sql.Result, err error) func(int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		got, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if got < int64(want) {
			return fmt.Errorf("%d of %d rows matched by primary key: %w", got, want, sql.ErrNoRows)
		}
		return nil
	}
}

// writeFunc runs one shard's statement on m, a *T or *[]*T holding n objects.
type writeFunc func(ctx context.Context, db bun.IDB, m any, n int) error

func (s *Session) write(ctx context.Context, op string, model any, opts []StatementOption, run writeFunc) error {
	mi, kind, err := s.dest(model)
	if err != nil {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	if kind == destTable {
		return fmt.Errorf("%w: %s: the model %T is a nil pointer; pass the objects to write", ErrInvalidArgument, op, model)
	}
	o := options(opts)
	v := reflect.ValueOf(model).Elem()

	// Collect the objects as pointers, so per-shard slices alias the
	// caller's objects and generated values come back to them.
	objs, nilAt := objectsOf(v, kind)
	if nilAt >= 0 {
		return fmt.Errorf("%w: %s %s: element %d of the slice is nil", ErrInvalidArgument, op, mi.table.TypeName, nilAt)
	}
	if len(objs) == 0 {
		return nil
	}

	pin, err := s.pinned(ctx, &o, op+" "+mi.table.TypeName)
	if err != nil {
		return err
	}
	var ids []ShardID
	groups := map[ShardID][]reflect.Value{}
	for i, obj := range objs {
		id, err := s.placeObject(ctx, op, mi, obj, pin)
		if err != nil {
			if len(objs) > 1 {
				return fmt.Errorf("%s (element %d)", err, i)
			}
			return err
		}
		if _, ok := groups[id]; !ok {
			ids = append(ids, id)
		}
		groups[id] = append(groups[id], obj)
	}
	if err := s.checkRelations(ctx, op, mi, groups); err != nil {
		return err
	}
	slices.Sort(ids)

	done := make([]bool, len(ids))
	err = s.each(ctx, ids, op, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		objs := groups[id]
		var m any
		if len(objs) == 1 {
			m = objs[0].Addr().Interface()
		} else {
			ptrs := reflect.MakeSlice(reflect.SliceOf(reflect.PointerTo(mi.typ)), len(objs), len(objs))
			for j, obj := range objs {
				ptrs.Index(j).Set(obj.Addr())
			}
			p := reflect.New(ptrs.Type())
			p.Elem().Set(ptrs)
			m = p.Interface()
		}
		if err := run(ctx, db, m, len(objs)); err != nil {
			return err
		}
		done[i] = true
		s.wrote(ctx, id, db)
		for _, obj := range objs {
			if tok := mi.token(obj); tok != nil {
				tok.SetShard(id)
			}
		}
		return nil
	})
	if err != nil {
		var ok []ShardID
		for i, d := range done {
			if d {
				ok = append(ok, ids[i])
			}
		}
		if len(ok) > 0 {
			return fmt.Errorf("session: %s %s committed on shards %v but failed on others: %w", op, mi.table.TypeName, ok, err)
		}
		return err
	}
	return nil
}

// pinned returns the shard a statement is pinned to by an option, a Using
// view or the context, or "" when it is not. Writes of single objects take
// one shard, so a pin to several is an error.
func (s *Session) pinned(ctx context.Context, o *stmtOptions, what string) (ShardID, error) {
	ids, by, err := s.pinOf(ctx, o, what)
	if err != nil || ids == nil {
		return "", err
	}
	r, err := s.checked(ids, by, what)
	if err != nil {
		return "", err
	}
	if len(r.Shards) != 1 {
		return "", fmt.Errorf("%w: %s: pinned to %d shards %v by %s; a write of objects needs exactly one",
			ErrInvalidArgument, what, len(r.Shards), r.Shards, by)
	}
	return r.Shards[0], nil
}

// placeObject decides the shard of one object for op.
func (s *Session) placeObject(ctx context.Context, op string, mi *modelInfo, obj reflect.Value, pin ShardID) (ShardID, error) {
	var have ShardID
	if tok := mi.token(obj); tok != nil {
		have, _ = tok.Shard()
	}
	switch {
	case pin != "" && (op == "insert" || have == "" || have == pin):
		return pin, nil
	case pin != "":
		return "", fmt.Errorf("%w: %s %s: the object belongs to shard %s but the statement is pinned to %s; "+
			"rows are not moved between shards (delete it there and insert it here)", ErrInvalidArgument, op, mi.table.TypeName, have, pin)
	case have != "":
		if _, ok := s.shards[have]; !ok {
			return "", s.unknown(have, op+" "+mi.table.TypeName+" (the object's token)")
		}
		return have, nil
	}
	id, err := s.shardChooser.ChooseShard(ctx, mi.table, obj.Addr().Interface())
	if err != nil {
		return "", fmt.Errorf("session: %s %s: %w", op, mi.table.TypeName, err)
	}
	if id == "" {
		return "", fmt.Errorf("%w: %s %s: the ShardChooser returned an empty shard id", ErrNoShard, op, mi.table.TypeName)
	}
	if _, ok := s.shards[id]; !ok {
		return "", s.unknown(id, op+" "+mi.table.TypeName+" (ShardChooser)")
	}
	return id, nil
}
