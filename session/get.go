package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgxscan"
)

// Get loads the row with primary key pk into dst, a non-nil pointer to a
// model struct. Composite keys are given as several values, in the order of
// the model's primary-key columns. Each value is first converted to the Go
// type of its column ("42", 42 and int32(42) alike for an int64 column; see
// "Key values" in the package documentation); a value that cannot convert
// without loss, such as 1001.9, fails with [ErrInvalidArgument].
//
// Which shard is read depends on whether the key is given:
//
//   - With pk values, Get loads a new identity: the shards probed are, in
//     precedence order, the shards of a [Session.Using] view, the shard
//     pinned in ctx ([WithShardID]), or the IdentityChooser's candidates,
//     probed as the [Probe] option says; a pinned Get never asks the
//     chooser. On success dst is replaced by the row, and its [Token], if
//     it has one, records where the row was found (whatever dst held
//     before); on failure dst is left as it was.
//   - With no pk values, the key already set on dst is read again (as
//     Bun's WherePK does). If dst's Token records a shard, that shard is
//     read and no other, and no chooser is asked: the same key may exist on
//     another shard, and dst is the row of its own (as
//     UnitOfWork.Refresh reads its object's shard). The Token is kept. A
//     Using view or a context pin that does not include that shard is
//     refused with [ErrInvalidArgument], naming both, since rows are not
//     moved between shards silently. If dst has no Token, or one that
//     records no shard, it is routed as a Get with pk values is.
//
// A key found nowhere gives an error that satisfies errors.Is(err,
// sql.ErrNoRows). A key found on several candidates gives [ErrAmbiguous]
// (with [ProbeConcurrent]). A shard that fails gives a *ShardError. A pin to
// no shard (Using(), WithShardID(ctx, "")) is [ErrInvalidArgument].
func (s *Session) Get(ctx context.Context, dst any, pk ...any) error {
	return s.get(ctx, stmtOptions{}, dst, pk)
}

// GetWith is [Session.Get] with statement options: [SetShardID] and
// [SetShardIDs] pin the shards probed (over a Using view and the
// context), [AllowScatter] lets a Get the IdentityChooser sends to every
// shard run under [WithScatterGuard] (and [DenyScatter] refuses one);
// others have no effect but [AllowPartial], which is [ErrInvalidArgument]: a
// key might live on the shard that failed, so a Get never answers from
// part of its candidates. The options are a slice of their own, not
// mixed into pk, because an option value there could not be told from a
// key value.
func (s *Session) GetWith(ctx context.Context, opts []StatementOption, dst any, pk ...any) error {
	o, err := getOptions(opts)
	if err != nil {
		return err
	}
	return s.get(ctx, o, dst, pk)
}

// getOptions reads the statement options of a Get, refusing those that
// do not apply.
func getOptions(opts []StatementOption) (stmtOptions, error) {
	o := options(opts)
	if o.partial {
		return o, fmt.Errorf("%w: Get: AllowPartial does not apply: the key might live on a shard that failed, "+
			"so a Get never answers from part of its candidates", ErrInvalidArgument)
	}
	return o, nil
}

func (s *Session) get(ctx context.Context, o stmtOptions, dst any, pk []any) error {
	if s.cfg.observer == nil {
		return s.getOne(ctx, o, dst, pk)
	}
	mi, _ := s.modelOf(dst)
	ctx, rec := s.observe(ctx, "get", mi)
	err := s.getOne(ctx, o, dst, pk)
	rec.endScan(err, dst)
	return err
}

func (s *Session) getOne(ctx context.Context, o stmtOptions, dst any, pk []any) error {
	mi, kind, err := s.dest(dst)
	if err != nil {
		return fmt.Errorf("session: Get: %w", err)
	}
	if kind != destStruct {
		return fmt.Errorf("%w: Get: dst must be a non-nil pointer to a model struct, got %T", ErrInvalidArgument, dst)
	}
	target := reflect.ValueOf(dst).Elem()
	if len(pk) == 0 {
		return s.reget(ctx, &o, mi, target, dst)
	}
	if pk, err = typedPK(mi, pk); err != nil {
		return err
	}
	r, err := s.getRoute(ctx, &o, mi, pk)
	if err != nil {
		return err
	}
	// A new identity: load into a fresh object and replace dst only on
	// success, so that a miss cannot leave dst with the new key and the old
	// row's columns, relations and Token (a later Update would write them).
	fresh := reflect.New(mi.typ)
	id, err := s.getRouted(ctx, mi, fresh.Elem(), fresh.Interface(), pk, r)
	if err != nil {
		return err
	}
	target.Set(fresh.Elem())
	return s.fireLoads(ctx, nil, target, mi, nil, false, id) // loadhook.go
}

// getRoute is where a Get of pk looks: the pin, else the IdentityChooser's
// candidates. Get and ExplainGet both call it.
func (s *Session) getRoute(ctx context.Context, o *stmtOptions, mi *modelInfo, pk []any) (Route, error) {
	return s.route(ctx, o, "Get "+mi.table.TypeName, func() (chooser.Target, error) {
		return s.identityChooser.ChooseIdentity(ctx, chooser.Key{Table: mi.table, PK: pk})
	})
}

// reget is Get with no key values: it reads dst's own key again, from the
// shard dst's Token records when it records one.
func (s *Session) reget(ctx context.Context, o *stmtOptions, mi *modelInfo, target reflect.Value, dst any) error {
	t := mi.table
	what := "Get " + t.TypeName
	pk := make([]any, len(t.PKs))
	for i, f := range t.PKs {
		pk[i] = f.Value(target).Interface()
	}
	pk, err := typedPK(mi, pk)
	if err != nil {
		return err
	}
	var home ShardID
	if tok := mi.token(target); tok != nil {
		home, _ = tok.Shard()
	}
	if home == "" {
		r, err := s.route(ctx, o, what, func() (chooser.Target, error) {
			return s.identityChooser.ChooseIdentity(ctx, chooser.Key{Table: t, PK: pk})
		})
		if err != nil {
			return err
		}
		_, err = s.getRouted(ctx, mi, target, dst, pk, r)
		return err
	}
	if _, ok := s.shards[home]; !ok {
		return s.unknown(home, what+" (the object's token)")
	}
	pin, by, err := s.pinOf(ctx, o, what)
	if err != nil {
		return err
	}
	if pin != nil {
		r, err := s.checked(pin, by, what)
		if err != nil {
			return err
		}
		if !slices.Contains(r.Shards, home) {
			return fmt.Errorf("%w: %s%v: the object belongs to shard %s but the %s pins %v; "+
				"rows are not moved between shards (pass the key to load the row of the pinned shard)",
				ErrInvalidArgument, what, pk, home, pinName(by), r.Shards)
		}
	}
	// Keep the Token as it is (its shard, and whether it was pinned): the
	// object stays what it was, re-read.
	tok := *mi.token(target)
	_, err = s.getRouted(ctx, mi, target, dst, pk, Route{Shards: []ShardID{home}, By: "token"})
	*mi.token(target) = tok
	return err
}

// getRouted loads the row with primary key pk into target (dst's struct)
// from the shards of r, as Get describes, and returns the shard it came
// from.
func (s *Session) getRouted(ctx context.Context, mi *modelInfo, target reflect.Value, dst any, pk []any, r Route) (ShardID, error) {
	t := mi.table
	s.routed(ctx, r)
	// One candidate: load straight into dst, as plain Bun would.
	if len(r.Shards) == 1 {
		id := r.Shards[0]
		if err := setPK(mi, target, pk); err != nil {
			return "", err
		}
		missing := false
		err := s.run(ctx, 0, id, s.reading(func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
			err := pgxscan.Scan(ctx, db, db.NewSelect().Model(dst).WherePK())
			if errors.Is(err, sql.ErrNoRows) {
				missing = true
				return nil
			}
			if err == nil {
				s.readRows(ctx, 1)
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
		err := pgxscan.Scan(ctx, db, db.NewSelect().Model(obj.Interface()).WherePK())
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		s.readRows(ctx, 1)
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

// setPK writes pk, typed by typedPK (each value of its column's type),
// into the primary-key fields of v.
func setPK(mi *modelInfo, v reflect.Value, pk []any) error {
	for i, f := range mi.table.PKs {
		fv := f.Value(v)
		pv := reflect.ValueOf(pk[i])
		if fv.Kind() == reflect.Pointer && pv.IsValid() && pv.Type() == fv.Type().Elem() {
			p := reflect.New(pv.Type())
			p.Elem().Set(pv)
			pv = p
		}
		if !pv.IsValid() || !pv.Type().AssignableTo(fv.Type()) {
			return fmt.Errorf("%w: Get %s: primary-key column %s has type %s, got %T",
				ErrInvalidArgument, mi.table.TypeName, f.Name, fv.Type(), pk[i])
		}
		fv.Set(pv)
	}
	return nil
}

// convertible allows numeric-to-numeric and same-kind conversions, but not
// Go's int-to-string conversion, which would turn 7 into "\a". (Key values
// are converted by typedKey instead, which refuses lossy conversions.)
func convertible(from, to reflect.Kind) bool {
	isNum := func(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Float64 }
	return from == to || (isNum(from) && isNum(to))
}
