package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgxscan"
)

// GetMany loads the rows with the primary keys in keys into dst, a non-nil
// *[]T or *[]*T, with one statement per shard however many keys there are
// (WHERE pk IN (...), or (pk1, pk2) IN (...) for a composite key). keys is
// a slice: of key values for a model with one primary-key column
// ([]int64{7, 9}, []any{"a", "b"}), or of []any holding one value per
// primary-key column, in their order, for a composite key. Each value is
// converted as Get converts it (see "Key values" in the package
// documentation); a value that cannot convert fails the call with
// [ErrInvalidArgument] before any statement is sent.
//
// The shards asked for each key are the ones Get would probe: a
// [Session.Using] view's or a context pin's shards, else the
// IdentityChooser's candidates. When the IdentityChooser is also a
// [chooser.Splitter] for the primary-key column (Hash, Jump, Ranges,
// ValueMap, FromID for shard-encoded ids, Lookup: one directory call for
// all the keys), it splits the keys in one call; otherwise it is asked key
// by key. Each shard then receives the keys that may be on it, and the
// shards run at once: a key with several candidates is asked of all of
// them in the same round. A key found on several candidates gives
// [ErrAmbiguous] naming it and the shards, unless the session probes with
// [ProbeInOrder], where the first candidate in the chooser's order wins, as
// Get would answer.
//
// dst receives one object per key asked, in the order of keys; a key asked
// twice is read once, and both places hold the same row (the same pointer
// for a *[]*T). Each object's [Token], if it has one, records its shard. On
// success dst's old contents are replaced. Keys found nowhere give a
// *[NotFoundError] listing them, which satisfies errors.Is(err,
// sql.ErrNoRows); dst then holds the rows that were found, still in the
// order of keys, and no place for the others. On any other error (bad
// input, a failed shard as a *ShardError, ErrAmbiguous) dst is left as it
// was. An empty keys sends nothing and empties dst.
func (s *Session) GetMany(ctx context.Context, dst any, keys any) error {
	mi, kind, err := s.dest(dst)
	if err != nil {
		return fmt.Errorf("session: GetMany: %w", err)
	}
	if kind != destSlice && kind != destSlicePtr {
		return fmt.Errorf("%w: GetMany: dst must be a *[]T or *[]*T of a model, got %T", ErrInvalidArgument, dst)
	}
	b, err := s.batchOf(mi, keys)
	if err != nil {
		return err
	}
	if err := s.routeBatch(ctx, b); err != nil {
		return err
	}
	all := make([]int, len(b.pks))
	for i := range all {
		all[i] = i
	}
	got, err := s.fetchBatch(ctx, b, all)
	if err != nil {
		return err
	}
	return b.fill(reflect.ValueOf(dst).Elem(), kind, got)
}

// batch is the keys of one GetMany, each once, typed, with where to ask.
type batch struct {
	mi    *modelInfo
	what  string
	orig  []any       // per unique key: as the caller gave it
	pks   [][]any     // per unique key: typed by typedKey, in PK-column order
	canon []any       // per unique key: identity.Canonical of pks
	index map[any]int // canon -> unique key
	pos   []int       // per key asked: its unique key
	cands [][]ShardID // per unique key: the shards that may hold it, in probe order
	mark  func(ShardID) mark
}

// batchOf reads keys (a slice, see GetMany) for model mi.
func (s *Session) batchOf(mi *modelInfo, keys any) (*batch, error) {
	t := mi.table
	what := "GetMany " + t.TypeName
	kv := reflect.ValueOf(keys)
	if kv.Kind() != reflect.Slice && kv.Kind() != reflect.Array {
		return nil, fmt.Errorf("%w: %s: keys must be a slice of keys ([]int64{7, 9}, or [][]any for a composite key), got %T",
			ErrInvalidArgument, what, keys)
	}
	if len(t.PKs) == 0 {
		return nil, fmt.Errorf("%w: %s: model %s has no primary key (tag a field `bun:\",pk\"`)", ErrInvalidArgument, what, t.TypeName)
	}
	n := kv.Len()
	b := &batch{mi: mi, what: what, index: make(map[any]int, n), pos: make([]int, n),
		orig: make([]any, 0, n), pks: make([][]any, 0, n), canon: make([]any, 0, n)}
	if len(t.PKs) == 1 {
		// One column: no []any per key; the typed values share one array.
		f := t.PKs[0]
		flat := make([]any, 0, n)
		for i := range n {
			x := kv.Index(i).Interface()
			v, err := typedKey(what, t, f, x)
			if err != nil {
				return nil, fmt.Errorf("session: %s: key %d: %w", what, i, err)
			}
			c := identity.Canonical(v)
			u, ok := b.index[c]
			if !ok {
				u = len(b.pks)
				b.index[c] = u
				b.orig = append(b.orig, x)
				flat = append(flat, v)
				b.pks = append(b.pks, flat[len(flat)-1:len(flat):len(flat)])
				b.canon = append(b.canon, c)
			}
			b.pos[i] = u
		}
		return b, nil
	}
	for i := range n {
		x := kv.Index(i).Interface()
		xv := reflect.ValueOf(x)
		if !xv.IsValid() || (xv.Kind() != reflect.Slice && xv.Kind() != reflect.Array) {
			return nil, fmt.Errorf("%w: %s: key %d is %v (%T); model %s has a composite primary key, so each key is a []any of %d values",
				ErrInvalidArgument, what, i, x, x, t.TypeName, len(t.PKs))
		}
		pk := make([]any, xv.Len())
		for j := range pk {
			pk[j] = xv.Index(j).Interface()
		}
		typed, err := typedPK(mi, pk)
		if err != nil {
			return nil, fmt.Errorf("session: %s: key %d: %w", what, i, err)
		}
		c := identity.Canonical(typed...)
		u, ok := b.index[c]
		if !ok {
			u = len(b.pks)
			b.index[c] = u
			b.orig = append(b.orig, x)
			b.pks = append(b.pks, typed)
			b.canon = append(b.canon, c)
		}
		b.pos[i] = u
	}
	return b, nil
}

// routeBatch finds the candidate shards of every key of b: a pin's shards,
// else a Splitter's split in one call, else the IdentityChooser key by key.
func (s *Session) routeBatch(ctx context.Context, b *batch) error {
	var o stmtOptions
	b.cands = make([][]ShardID, len(b.pks))
	ids, by, err := s.pinOf(ctx, &o, b.what)
	if err != nil {
		return err
	}
	if ids != nil {
		r, err := s.checked(ids, by, b.what)
		if err != nil {
			return err
		}
		for i := range b.cands {
			b.cands[i] = r.Shards
		}
		b.mark = r.mark
		return nil
	}
	b.mark = Route{By: "chooser"}.mark
	t := b.mi.table
	if sp, ok := s.identityChooser.(chooser.Splitter); ok && len(t.PKs) == 1 && len(b.pks) > 0 {
		vals := make([]any, len(b.pks))
		for i, pk := range b.pks {
			vals[i] = pk[0]
		}
		parts, err := sp.SplitValues(ctx, t, t.PKs[0].Name, vals)
		if err != nil {
			return fmt.Errorf("session: %s: %w", b.what, err)
		}
		if parts != nil {
			return s.splitBatch(b, parts)
		}
	}
	for i, pk := range b.pks {
		ct, err := s.identityChooser.ChooseIdentity(ctx, chooser.Key{Table: t, PK: pk})
		if err != nil {
			return fmt.Errorf("session: %s: %w", b.what, err)
		}
		r, err := s.chosen(&o, b.what, ct)
		if err != nil {
			return err
		}
		b.cands[i] = r.Shards
	}
	return nil
}

// splitBatch takes a Splitter's answer as the keys' candidates, after
// checking it: every key on exactly one known shard, and no key that was
// not asked. A key left out would be reported missing although it exists.
func (s *Session) splitBatch(b *batch, parts map[ShardID][]any) error {
	ids := make([]ShardID, 0, len(parts))
	for id := range parts {
		ids = append(ids, id)
	}
	slices.Sort(ids) // errors name the same shard on every run
	what := fmt.Sprintf("%s: the IdentityChooser's split %v", b.what, parts)
	for _, id := range ids {
		if _, ok := s.shards[id]; !ok {
			return fmt.Errorf("%w %q: %s puts %v on it (the session has %v)", ErrUnknownShard, id, what, parts[id], s.order)
		}
		for _, v := range parts[id] {
			u, ok := b.index[identity.Canonical(v)]
			switch {
			case !ok:
				return fmt.Errorf("%w: %s puts %#v, a key not asked for, on shard %s", ErrInvalidArgument, what, v, id)
			case b.cands[u] != nil && b.cands[u][0] != id:
				return fmt.Errorf("%w: %s puts %#v on shards %s and %s; a key has one owner", ErrAmbiguous, what, v, b.cands[u][0], id)
			}
			b.cands[u] = []ShardID{id}
		}
	}
	for u, c := range b.cands {
		if c == nil {
			return fmt.Errorf("%w: %s puts %#v on no shard", ErrNoShard, what, b.pks[u][0])
		}
	}
	return nil
}

// hit is one key's row and the shard it came from.
type hit struct {
	obj reflect.Value // a *T
	id  ShardID
}

// fetchBatch reads the unique keys need of b, each from its candidates, in
// one statement per shard, and returns the row of each unique key (a zero
// hit for a key not found or not needed).
func (s *Session) fetchBatch(ctx context.Context, b *batch, need []int) ([]hit, error) {
	got := make([]hit, len(b.pks))
	if len(need) == 0 {
		return got, nil
	}
	// Group the keys by shard, shards in the session's order.
	perShard := make(map[ShardID][]int)
	for _, u := range need {
		for _, id := range b.cands[u] {
			perShard[id] = append(perShard[id], u)
		}
	}
	ids := make([]ShardID, 0, len(perShard))
	for _, id := range s.order {
		if _, ok := perShard[id]; ok {
			ids = append(ids, id)
		}
	}
	t := b.mi.table
	cols := make([]string, len(t.PKs))
	for i, f := range t.PKs {
		cols[i] = string(t.SQLAlias) + "." + string(f.SQLName)
	}
	sliceType := reflect.SliceOf(reflect.PointerTo(b.mi.typ))
	rows := make([]reflect.Value, len(ids))
	err := s.fanOut(ctx, ids, "get", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		keys := perShard[id]
		in := make([]any, len(keys))
		for j, u := range keys {
			if len(t.PKs) == 1 {
				in[j] = b.pks[u][0]
			} else {
				in[j] = bun.Tuple(b.pks[u])
			}
		}
		out := reflect.New(sliceType)
		q := db.NewSelect().Model(out.Interface())
		if len(t.PKs) == 1 {
			q = q.Where("? IN (?)", schema.Safe(cols[0]), bun.List(in))
		} else {
			q = q.Where("(?) IN (?)", schema.Safe(strings.Join(cols, ", ")), bun.List(in))
		}
		if err := pgxscan.Scan(ctx, db, q); err != nil { // pgx directly where eligible, else q.Scan
			return err
		}
		rows[i] = out.Elem()
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Which candidates hold each key; a key's shards in its probe order.
	found := make([][]hit, len(b.pks))
	for i, id := range ids {
		rs := rows[i]
		for j := range rs.Len() {
			p := rs.Index(j)
			var c any
			if len(t.PKs) == 1 {
				c = identity.Canonical(t.PKs[0].Value(p.Elem()).Interface())
			} else {
				c = identity.Canonical(pkOf(b.mi, p.Elem())...)
			}
			u, ok := b.index[c]
			if !ok || !slices.Contains(b.cands[u], id) {
				// A collation or type that matches keys Go tells apart
				// (citext, a padded char(n)): the row cannot be told
				// whose it is, so nothing is guessed.
				return nil, fmt.Errorf("%w: %s: shard %s returned the row with key %v, which is none of the keys asked of it; "+
					"the column compares keys differently from Go (a case-insensitive or padded type?)",
					ErrUnsupported, b.what, id, pkOf(b.mi, p.Elem()))
			}
			for _, h := range found[u] {
				if h.id == id {
					return nil, fmt.Errorf("%w: %s%v: shard %s returned two rows for the key (is it the table's primary key?)",
						ErrAmbiguous, b.what, b.pks[u], id)
				}
			}
			found[u] = append(found[u], hit{obj: p, id: id})
		}
	}
	for u, hs := range found {
		switch {
		case len(hs) == 0:
			continue
		case len(hs) > 1 && s.cfg.probe != ProbeInOrder:
			where := make([]ShardID, len(hs))
			for i, h := range hs {
				where[i] = h.id
			}
			slices.SortFunc(where, func(a, c ShardID) int { return slices.Index(s.order, a) - slices.Index(s.order, c) })
			return nil, fmt.Errorf("%w: %s%v: the key is on shards %v; pin one with WithShardID or Using",
				ErrAmbiguous, b.what, b.pks[u], where)
		}
		best := hs[0]
		for _, h := range hs[1:] { // ProbeInOrder: the first candidate wins
			if slices.Index(b.cands[u], h.id) < slices.Index(b.cands[u], best.id) {
				best = h
			}
		}
		if tok := b.mi.token(best.obj.Elem()); tok != nil {
			b.mark(best.id).on(tok)
		}
		got[u] = best
	}
	return got, nil
}

// fill sets dst (the slice dst points to, of kind) to the rows of got in
// the order the keys were asked, and returns a *NotFoundError for the keys
// got lacks.
func (b *batch) fill(dst reflect.Value, kind destKind, got []hit) error {
	var missing []int
	seen := make([]bool, len(got))
	n := 0
	for _, u := range b.pos {
		if got[u].obj.IsValid() {
			n++
		} else if !seen[u] {
			seen[u] = true
			missing = append(missing, u)
		}
	}
	out := reflect.MakeSlice(dst.Type(), n, n)
	if kind == destSlicePtr {
		// Through unsafe, not reflect's Set per element: the pointers are
		// the same words, and this is the call's hottest loop.
		ptrs := unsafe.Slice((*unsafe.Pointer)(out.UnsafePointer()), n)
		i := 0
		for _, u := range b.pos {
			if h := got[u]; h.obj.IsValid() {
				ptrs[i] = h.obj.UnsafePointer()
				i++
			}
		}
	} else {
		i := 0
		for _, u := range b.pos {
			if h := got[u]; h.obj.IsValid() {
				out.Index(i).Set(h.obj.Elem())
				i++
			}
		}
	}
	dst.Set(out)
	if missing != nil {
		return b.notFound(missing)
	}
	return nil
}

// notFound is the error for the unique keys missing.
func (b *batch) notFound(missing []int) error {
	var asked []ShardID
	keys := make([]any, len(missing))
	for i, u := range missing {
		keys[i] = b.orig[u]
		for _, id := range b.cands[u] {
			if !slices.Contains(asked, id) {
				asked = append(asked, id)
			}
		}
	}
	slices.Sort(asked)
	return &NotFoundError{Model: b.mi.table.TypeName, Keys: keys, Shards: asked}
}

// GetMany is [Session.GetMany] inside the unit: dst is a *[]*T and
// receives the tracked objects. Each key is first looked up in the identity
// map under its candidate shards, in order, as [UnitOfWork.Get] does; a hit
// costs no statement, so a GetMany of keys all tracked sends none. The
// other keys are read inside the unit's transactions in one statement per
// shard and tracked. A key the unit has marked for deletion counts as not
// found (in the *NotFoundError).
func (u *UnitOfWork) GetMany(ctx context.Context, dst any, keys any) error {
	if err := u.enter(opGet); err != nil {
		return err
	}
	defer u.leave()
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() || dv.Elem().Kind() != reflect.Slice ||
		dv.Elem().Type().Elem().Kind() != reflect.Pointer || dv.Elem().Type().Elem().Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%w: UnitOfWork.GetMany: dst must be a *[]*T (var locs []*Location; uow.GetMany(ctx, &locs, ids)), "+
			"because the unit hands out its tracked objects; got %T", ErrInvalidArgument, dst)
	}
	mi, err := u.s.info(dv.Elem().Type().Elem().Elem())
	if err != nil {
		return fmt.Errorf("session: GetMany: %w", err)
	}
	b, err := u.view.batchOf(mi, keys)
	if err != nil {
		return err
	}
	if err := u.view.routeBatch(ctx, b); err != nil {
		return err
	}
	got := make([]hit, len(b.pks))
	var need []int
	for k, pk := range b.pks {
		tracked := false
		for _, id := range b.cands[k] {
			if e, ok := u.ids.Get(identity.NewKey(mi.typ, id, pk...)); ok {
				if e.state != stateDeleted {
					got[k] = hit{obj: reflect.ValueOf(e.ptr), id: id}
				}
				tracked = true
				break
			}
		}
		if !tracked {
			need = append(need, k)
		}
	}
	fetched, err := u.view.fetchBatch(ctx, b, need)
	if err != nil {
		return err
	}
	for _, k := range need {
		if h := fetched[k]; h.obj.IsValid() {
			got[k] = hit{obj: u.adopt(mi, h.obj, h.id, nil), id: h.id}
		}
	}
	return b.fill(dv.Elem(), destSlicePtr, got)
}
