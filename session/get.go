package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
)

// Get loads the row with primary key pk into dst, a non-nil pointer to a
// model struct. Composite keys are given as several values, in the order of
// the model's primary-key columns; with no pk values, the key already set
// on dst is used (as Bun's WherePK does).
//
// The shards probed are, in precedence order: the shards of a [Session.Using]
// view, the shard pinned in ctx ([WithShardID]), or the IdentityChooser's
// candidates. Candidates are probed as the [Probe] option says. A pinned
// statement never asks the chooser.
//
// A key found nowhere gives an error that satisfies errors.Is(err,
// sql.ErrNoRows). A key found on several candidates gives [ErrAmbiguous]
// (with [ProbeConcurrent]). A shard that fails gives a *ShardError. On
// success dst's [Token], if it has one, records the shard.
func (s *Session) Get(ctx context.Context, dst any, pk ...any) error {
	mi, kind, err := s.dest(dst)
	if err != nil {
		return fmt.Errorf("session: Get: %w", err)
	}
	if kind != destStruct {
		return fmt.Errorf("%w: Get: dst must be a non-nil pointer to a model struct, got %T", ErrInvalidArgument, dst)
	}
	t := mi.table
	target := reflect.ValueOf(dst).Elem()
	if len(pk) == 0 {
		pk = make([]any, len(t.PKs))
		for i, f := range t.PKs {
			pk[i] = f.Value(target).Interface()
		}
	}
	if err := checkPK(mi, pk); err != nil {
		return err
	}
	var o stmtOptions
	r, err := s.route(ctx, &o, "Get "+t.TypeName, func() (chooser.Target, error) {
		return s.identityChooser.ChooseIdentity(ctx, chooser.Key{Table: t, PK: pk})
	})
	if err != nil {
		return err
	}
	_, err = s.getRouted(ctx, mi, target, dst, pk, r)
	return err
}

// getRouted loads the row with primary key pk into target (dst's struct)
// from the shards of r, as Get describes, and returns the shard it came
// from.
func (s *Session) getRouted(ctx context.Context, mi *modelInfo, target reflect.Value, dst any, pk []any, r Route) (ShardID, error) {
	t := mi.table
	// One candidate: load straight into dst, as plain Bun would.
	if len(r.Shards) == 1 {
		id := r.Shards[0]
		if err := setPK(mi, target, pk); err != nil {
			return "", err
		}
		missing := false
		err := s.run(ctx, 0, id, s.reading(func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
			err := db.NewSelect().Model(dst).WherePK().Scan(ctx)
			if errors.Is(err, sql.ErrNoRows) {
				missing = true
				return nil
			}
			return err
		}))
		switch {
		case err != nil:
			return "", &ShardError{Shard: id, Op: "get", Err: err}
		case missing:
			return "", notFound(mi, pk, r.Shards)
		}
		if tok := mi.token(target); tok != nil {
			r.mark(id).on(tok)
		}
		return id, nil
	}

	found := make([]reflect.Value, len(r.Shards))
	probe := func(ctx context.Context, i int, id ShardID, db bun.IDB) (bool, error) {
		obj := reflect.New(mi.typ)
		if err := setPK(mi, obj.Elem(), pk); err != nil {
			return false, err
		}
		err := db.NewSelect().Model(obj.Interface()).WherePK().Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		found[i] = obj
		return true, nil
	}
	if s.cfg.probe == ProbeInOrder {
		for i, id := range r.Shards {
			var ok bool
			err := s.run(ctx, i, id, s.reading(func(ctx context.Context, i int, id ShardID, db bun.IDB) (err error) {
				ok, err = probe(ctx, i, id, db)
				return err
			}))
			if err != nil {
				return "", &ShardError{Shard: id, Op: "get", Err: err}
			}
			if ok {
				return id, s.found(mi, target, found[i], r.mark(id))
			}
		}
		return "", notFound(mi, pk, r.Shards)
	}
	err := s.fanOut(ctx, r.Shards, "get", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		_, err := probe(ctx, i, id, db)
		return err
	})
	if err != nil {
		return "", err
	}
	var hits []ShardID
	winner := -1
	for i, obj := range found {
		if obj.IsValid() {
			hits = append(hits, r.Shards[i])
			if winner < 0 {
				winner = i
			}
		}
	}
	switch len(hits) {
	case 0:
		return "", notFound(mi, pk, r.Shards)
	case 1:
		return r.Shards[winner], s.found(mi, target, found[winner], r.mark(r.Shards[winner]))
	}
	return "", fmt.Errorf("%w: Get %s%v: the key is on shards %v; pin one with WithShardID or Using",
		ErrAmbiguous, t.TypeName, pk, hits)
}

func (s *Session) found(mi *modelInfo, target, obj reflect.Value, id mark) error {
	target.Set(obj.Elem())
	if tok := mi.token(target); tok != nil {
		id.on(tok)
	}
	return nil
}

func notFound(mi *modelInfo, pk []any, ids []ShardID) error {
	return fmt.Errorf("session: Get %s%v: not found on shards %v: %w", mi.table.TypeName, pk, ids, sql.ErrNoRows)
}

func checkPK(mi *modelInfo, pk []any) error {
	t := mi.table
	if len(t.PKs) == 0 {
		return fmt.Errorf("%w: Get: model %s has no primary key (tag a field `bun:\",pk\"`)", ErrInvalidArgument, t.TypeName)
	}
	if len(pk) != len(t.PKs) {
		names := make([]string, len(t.PKs))
		for i, f := range t.PKs {
			names[i] = f.Name
		}
		return fmt.Errorf("%w: Get %s: the primary key has %d column(s) (%s), got %d value(s) %v",
			ErrInvalidArgument, t.TypeName, len(t.PKs), strings.Join(names, ", "), len(pk), pk)
	}
	return nil
}

// setPK writes pk into the primary-key fields of v, converting each value to
// the field's type (an int key for an int64 column, say).
func setPK(mi *modelInfo, v reflect.Value, pk []any) error {
	for i, f := range mi.table.PKs {
		fv := f.Value(v)
		pv := reflect.ValueOf(pk[i])
		for pv.IsValid() && pv.Kind() == reflect.Pointer && fv.Kind() != reflect.Pointer {
			if pv.IsNil() {
				pv = reflect.Value{}
				break
			}
			pv = pv.Elem()
		}
		switch {
		case !pv.IsValid():
			return fmt.Errorf("%w: Get %s: primary-key column %s is nil", ErrInvalidArgument, mi.table.TypeName, f.Name)
		case pv.Type().AssignableTo(fv.Type()):
			fv.Set(pv)
		case pv.Type().ConvertibleTo(fv.Type()) && convertible(pv.Kind(), fv.Kind()):
			fv.Set(pv.Convert(fv.Type()))
		default:
			return fmt.Errorf("%w: Get %s: primary-key column %s has type %s, got %T",
				ErrInvalidArgument, mi.table.TypeName, f.Name, fv.Type(), pk[i])
		}
	}
	return nil
}

// convertible allows numeric-to-numeric and same-kind conversions, but not
// Go's int-to-string conversion, which would turn 7 into "\a".
func convertible(from, to reflect.Kind) bool {
	isNum := func(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Float64 }
	return from == to || (isNum(from) && isNum(to))
}
