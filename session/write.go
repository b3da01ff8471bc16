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
	"github.com/bunshard/bunshard/identity"
)

// Insert inserts model (a pointer to a model struct, or to a slice of them)
// and records on each object's [Token] the shard it went to.
//
// Each object goes to: the shard pinned by a statement option, a Using view
// or the context; else the shard already on its Token; else the one its
// ShardChooser picks. Under a pin the ShardChooser is asked too: an object
// it places on another shard fails the write with [ErrPinConflict] before
// anything is sent, unless the statement carries [PinWins]; one it cannot
// place (an empty answer or an error) goes to the pin. A slice is split by
// shard and written with one INSERT
// per shard, the shards in parallel. Values the database generates
// (RETURNING) land in the caller's objects.
//
// An object placed by its Token (a struct copy of a loaded object
// carries it) whose declared shard key routes to another shard fails with
// [ErrShardKeyChanged], as for [Session.Update]: clear the copy's Token
// with SetShard("") to place it by its key.
//
// Shards are written independently, each in its own implicit transaction: if
// one fails, the others may have committed; the error is a join of
// *ShardError values and says which shards committed. Use a unit of work
// with two-phase commit for all-or-nothing writes across shards.
func (s *Session) Insert(ctx context.Context, model any, opts ...StatementOption) error {
	return s.write(ctx, "insert", model, opts, func(ctx context.Context, db bun.IDB, m any, _ *modelInfo, _ []reflect.Value) ([]int, error) {
		_, err := db.NewInsert().Model(m).Exec(ctx)
		return nil, err
	})
}

// Update updates every column of model's objects (see [Session.Insert] for
// model) by primary key, each on its own shard: the shard on its [Token].
// Objects without a Token follow a pin (option, Using, context) or, failing
// that, the ShardChooser. An object whose Token names another shard than the
// pin is an error: rows are never moved between shards silently.
//
// When a chooser declares the model's shard-key column (a chooser.Scheme's
// key, a one-column chooser's Column) and the object's key now routes to
// another shard than its Token's, Update fails with [ErrShardKeyChanged]
// before anything is sent (move a row by deleting it and inserting it in
// one unit of work; [PinWins] with a pin on the Token's shard writes it
// anyway). With a chooser that declares no column the Token wins.
//
// A slice is updated with one statement per shard, which returns the
// primary keys it matched. If some objects match no row (the row is gone,
// or the object was placed on the wrong shard), the others are still
// written, and the error is a *[WriteError] that lists the objects written
// and those not, and satisfies errors.Is(err, sql.ErrNoRows). See Insert for
// what happens when a shard fails.
func (s *Session) Update(ctx context.Context, model any, opts ...StatementOption) error {
	return s.write(ctx, "update", model, opts, func(ctx context.Context, db bun.IDB, m any, mi *modelInfo, objs []reflect.Value) ([]int, error) {
		q := db.NewUpdate().Model(m)
		if len(objs) == 1 {
			return missingOne(q.WherePK().Exec(ctx))
		}
		return missingOf(ctx, mi, objs, q.Bulk().Returning("?TablePKs"))
	})
}

// Delete deletes model's objects by primary key, each on its own shard,
// routed as [Session.Update] routes, with one statement per shard. If some
// objects match no row, the others are still deleted and the error is a
// *[WriteError], as for Update.
func (s *Session) Delete(ctx context.Context, model any, opts ...StatementOption) error {
	return s.write(ctx, "delete", model, opts, func(ctx context.Context, db bun.IDB, m any, mi *modelInfo, objs []reflect.Value) ([]int, error) {
		q := db.NewDelete().Model(m).WherePK()
		if len(objs) == 1 {
			return missingOne(q.Exec(ctx))
		}
		return missingOf(ctx, mi, objs, q.Returning("?TablePKs"))
	})
}

// expectRows fails with sql.ErrNoRows when a statement affected fewer than
// want rows (the unit of work's flush uses it).
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

// missingOne reports the one object of a statement that affected no row.
func missingOne(res sql.Result, err error) ([]int, error) {
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return nil, err
	}
	return []int{0}, nil
}

// missingOf runs q (an UPDATE or DELETE of objs ... RETURNING their primary
// keys) and returns the positions in objs of the objects whose keys did not
// come back: they matched no row. The keys are scanned into fresh structs of
// the model, never into the caller's objects, since RETURNING comes back in
// no particular order.
func missingOf(ctx context.Context, mi *modelInfo, objs []reflect.Value, q interface {
	Exec(context.Context, ...any) (sql.Result, error)
}) ([]int, error) {
	keys := reflect.New(reflect.SliceOf(mi.typ))
	if _, err := q.Exec(ctx, keys.Interface()); err != nil {
		return nil, err
	}
	rows := keys.Elem()
	matched := make(map[any]bool, rows.Len())
	for i := range rows.Len() {
		matched[identity.Canonical(pkOf(mi, rows.Index(i))...)] = true
	}
	var missing []int
	for i, obj := range objs {
		if !matched[identity.Canonical(pkOf(mi, obj)...)] {
			missing = append(missing, i)
		}
	}
	return missing, nil
}

// writeFunc runs one shard's statement on m, a *T or *[]*T holding objs, and
// returns the positions in objs of the objects that matched no row.
type writeFunc func(ctx context.Context, db bun.IDB, m any, mi *modelInfo, objs []reflect.Value) (missing []int, err error)

// ObjectRef names one object of a write: its position in the slice given
// (0 for a single object), the shard it was sent to, and its primary-key
// values in the order of the model's primary-key columns.
type ObjectRef struct {
	Index int
	Shard ShardID
	PK    []any
}

// WriteError is returned by [Session.Update] and [Session.Delete] when some
// of the objects given matched no row on their shard (the row is gone, or
// the object was routed to the wrong shard). Written lists the objects
// whose rows were updated or deleted: those writes are done (committed,
// each shard's statement being its own transaction) and are not undone.
// Missing lists the objects that matched no row. Objects of a shard whose
// statement failed are in neither; the error of that shard is joined to
// this one. Both lists are sorted by Index.
//
// A WriteError satisfies errors.Is(err, sql.ErrNoRows).
type WriteError struct {
	Op      string // "update" or "delete"
	Model   string // the model's Go type name
	Written []ObjectRef
	Missing []ObjectRef

	cols []string // primary-key column names, for Error
}

// Error names the objects not written and those written, up to ten of each.
func (e *WriteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "session: %s %s: %d of %d objects matched no row by primary key and were not written: ",
		e.Op, e.Model, len(e.Missing), len(e.Missing)+len(e.Written))
	e.list(&b, e.Missing)
	if len(e.Written) == 0 {
		b.WriteString("; none was written")
	} else {
		fmt.Fprintf(&b, "; the other %d were written and stay so: ", len(e.Written))
		e.list(&b, e.Written)
	}
	b.WriteString(": " + sql.ErrNoRows.Error())
	return b.String()
}

func (e *WriteError) list(b *strings.Builder, refs []ObjectRef) {
	const show = 10
	b.WriteByte('[')
	for i, r := range refs {
		if i == show {
			fmt.Fprintf(b, " and %d more", len(refs)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		for j, v := range r.PK {
			if j > 0 {
				b.WriteByte(' ')
			}
			col := "pk"
			if j < len(e.cols) {
				col = e.cols[j]
			}
			fmt.Fprintf(b, "%s=%v", col, v)
		}
		fmt.Fprintf(b, " (element %d) on %s", r.Index, r.Shard)
	}
	b.WriteByte(']')
}

// Unwrap returns sql.ErrNoRows.
func (e *WriteError) Unwrap() error { return sql.ErrNoRows }

func (s *Session) write(ctx context.Context, op string, model any, opts []StatementOption, run writeFunc) error {
	if s.cfg.observer != nil {
		mi, _ := s.modelOf(model)
		ctx, rec := s.observe(ctx, op, mi)
		err := s.writeObjects(ctx, op, model, opts, run)
		rec.end(-1, err)
		return err
	}
	return s.writeObjects(ctx, op, model, opts, run)
}

func (s *Session) writeObjects(ctx context.Context, op string, model any, opts []StatementOption, run writeFunc) error {
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

	if s.reference(mi) { // reference.go: every shard, in one two-phase unit
		return s.writeReference(ctx, op, mi, objs, &o, run)
	}
	pin, err := s.pinned(ctx, &o, op+" "+mi.table.TypeName)
	if err != nil {
		return err
	}
	var ids []ShardID
	groups := map[ShardID][]reflect.Value{}
	pos := map[ShardID][]int{} // each group's objects' positions in objs
	for i, obj := range objs {
		at := i
		if kind == destStruct {
			at = -1
		}
		tokened := false // the object came with a shard on its Token
		if tok := mi.token(obj); tok != nil {
			_, tokened = tok.Shard()
		}
		id, err := s.placeObject(ctx, op, mi, obj, pin, at)
		if err == nil && s.at.unitOf() != nil {
			err = s.at.unitOf().outside([]ShardID{id}, pin.by, op+" "+describe(mi, obj, at))
		}
		// An update, or an insert placed by its Token (a struct copy of a
		// loaded object carries it), must not write a key that routes
		// elsewhere.
		if err == nil && (op == "update" || op == "insert" && tokened) && !pin.wins {
			err = s.keyMoved(ctx, op+" "+describe(mi, obj, at), mi, obj, id, o.written)
		}
		if err != nil {
			return err
		}
		if op == "insert" {
			if err := s.beforeInsert(ctx, op, mi, obj, id, at, s.rechooser(ctx, op, mi, obj, pin, at)); err != nil {
				return err
			}
		}
		if _, ok := groups[id]; !ok {
			ids = append(ids, id)
		}
		groups[id] = append(groups[id], obj)
		pos[id] = append(pos[id], i)
	}
	if err := s.checkRelations(ctx, op, mi, groups); err != nil {
		return err
	}
	slices.Sort(ids)
	if s.cfg.observer != nil {
		by := pin.by
		if by == "" {
			by = "placement"
		}
		s.routed(ctx, Route{Shards: ids, By: by})
	}

	done := make([]bool, len(ids))
	missing := make([][]int, len(ids)) // per shard: positions in groups[id] that matched no row
	err = s.each(ctx, ids, op, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		objs := groups[id]
		miss, err := run(ctx, db, groupModel(mi, objs, reflect.Value.Addr), mi, objs)
		if err != nil {
			return err
		}
		// The statement succeeded, even where some objects matched no row:
		// the others are written, so the shard counts as done and the
		// missing objects are reported once every shard has answered.
		done[i], missing[i] = true, miss
		s.wrote(ctx, id, db)
		for j, obj := range objs {
			if tok := mi.token(obj); tok != nil && !slices.Contains(miss, j) {
				tok.SetShard(id)
			}
		}
		return nil
	})
	werr := s.writeError(op, mi, ids, groups, pos, done, missing)
	if err != nil {
		var ok []ShardID
		for i, d := range done {
			if d {
				ok = append(ok, ids[i])
			}
		}
		if len(ok) > 0 {
			err = fmt.Errorf("session: %s %s committed on shards %v but failed on others: %w", op, mi.table.TypeName, ok, err)
		}
		if werr != nil {
			return errors.Join(werr, err)
		}
		return err
	}
	if werr != nil {
		return werr
	}
	return nil
}

// writeError returns the *WriteError of a write in which some objects
// matched no row, and nil (an untyped nil error) when none did.
func (s *Session) writeError(op string, mi *modelInfo, ids []ShardID, groups map[ShardID][]reflect.Value,
	pos map[ShardID][]int, done []bool, missing [][]int,
) error {
	short := false
	for _, m := range missing {
		short = short || len(m) > 0
	}
	if !short {
		return nil
	}
	e := &WriteError{Op: op, Model: mi.table.TypeName}
	for _, f := range mi.table.PKs {
		e.cols = append(e.cols, f.Name)
	}
	for i, id := range ids {
		if !done[i] {
			continue
		}
		for j, obj := range groups[id] {
			ref := ObjectRef{Index: pos[id][j], Shard: id, PK: pkOf(mi, obj)}
			if slices.Contains(missing[i], j) {
				e.Missing = append(e.Missing, ref)
			} else {
				e.Written = append(e.Written, ref)
			}
		}
	}
	byIndex := func(a, b ObjectRef) int { return a.Index - b.Index }
	slices.SortFunc(e.Missing, byIndex)
	slices.SortFunc(e.Written, byIndex)
	return e
}

// PinWins lets a pinned Insert, Update or Delete (pinned by [SetShardID], a
// [Session.Using] view or [WithShardID]) write each object on the pin even
// where the ShardChooser places the object on another shard, for the rare
// write that means to put a row where its own shard's reads will not find
// it (an archive copy, a migration). Without it such a write fails with
// [ErrPinConflict] before anything is sent. It does not let a pin override
// an object's Token on Update or Delete: a row is updated where it lives.
func PinWins() StatementOption {
	return func(o *stmtOptions) { o.pinWins = true }
}

// writePin is the one shard a write of objects is pinned to, and by what.
type writePin struct {
	id   ShardID // "" when the write is not pinned
	by   string  // "option", "using" or "context"
	wins bool    // PinWins: the pin places objects without asking the ShardChooser
}

// pinned returns the shard a statement is pinned to by an option, a Using
// view or the context, with id "" when it is not. Writes of single objects
// take one shard, so a pin to several is an error.
func (s *Session) pinned(ctx context.Context, o *stmtOptions, what string) (writePin, error) {
	ids, by, err := s.pinOf(ctx, o, what)
	if err != nil || ids == nil {
		return writePin{}, err
	}
	r, err := s.checked(ids, by, what)
	if err != nil {
		return writePin{}, err
	}
	if len(r.Shards) != 1 {
		return writePin{}, fmt.Errorf("%w: %s: pinned to %d shards %v by %s; a write of objects needs exactly one",
			ErrInvalidArgument, what, len(r.Shards), r.Shards, by)
	}
	return writePin{id: r.Shards[0], by: by, wins: o.pinWins}, nil
}

// pinWhat says what pinned a write, for errors.
func (p writePin) what() string {
	switch p.by {
	case "option":
		return "a statement option (SetShardID)"
	case "using":
		return "a Using view"
	}
	return "the context (WithShardID)"
}

// describe names one object of a write for errors: its primary key, or its
// place in the slice (at >= 0) when the key is not set yet.
func describe(mi *modelInfo, obj reflect.Value, at int) string {
	pk := pkOf(mi, obj)
	set := false
	for _, f := range mi.table.PKs {
		set = set || !f.HasZeroValue(obj)
	}
	var b strings.Builder
	b.WriteString(mi.table.TypeName)
	if set {
		b.WriteString(" ")
		for i, f := range mi.table.PKs {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%v", f.Name, pk[i])
		}
	}
	if at >= 0 {
		fmt.Fprintf(&b, " (element %d of the slice)", at)
	}
	return b.String()
}

// placeObject decides the shard of one object for op; at is its place in
// the slice written, or -1 for a single object.
//
// Under a pin it asks the ShardChooser too (unless PinWins): a chooser that
// places the object on another shard fails the write with ErrPinConflict; one
// that cannot place it (an empty answer, any error) leaves it to the pin.
func (s *Session) placeObject(ctx context.Context, op string, mi *modelInfo, obj reflect.Value, pin writePin, at int) (ShardID, error) {
	var have ShardID
	if tok := mi.token(obj); tok != nil {
		have, _ = tok.Shard()
	}
	switch {
	case pin.id != "" && op != "insert" && have != "" && have != pin.id:
		return "", fmt.Errorf("%w: %w: %s %s: the object belongs to shard %s but the statement is pinned to %s by %s; "+
			"rows are not moved between shards (delete it there and insert it here)",
			ErrInvalidArgument, ErrPinConflict, op, describe(mi, obj, at), have, pin.id, pin.what())
	case pin.id != "" && (pin.wins || op != "insert" && have == pin.id):
		return pin.id, s.vetWrite(ctx, op, mi, obj, pin.id, pin.what(), pin.wins, at)
	case pin.id != "":
		return s.checkPin(ctx, op, mi, obj, pin, at)
	case have != "":
		if _, ok := s.shards[have]; !ok {
			return "", s.unknown(have, op+" "+describe(mi, obj, at)+" (the object's token)")
		}
		return have, s.vetWrite(ctx, op, mi, obj, have, "its Token", false, at)
	}
	id, err := s.shardChooser.ChooseShard(ctx, mi.table, obj.Addr().Interface())
	if err != nil {
		return "", fmt.Errorf("session: %s %s: %w", op, describe(mi, obj, at), err)
	}
	if id == "" {
		return "", fmt.Errorf("%w: %s %s: the ShardChooser returned an empty shard id", ErrNoShard, op, describe(mi, obj, at))
	}
	if _, ok := s.shards[id]; !ok {
		return "", s.unknown(id, op+" "+describe(mi, obj, at)+" (ShardChooser)")
	}
	return id, nil
}

// checkPin asks the ShardChooser where an object pinned to pin belongs (see
// chooser.WithPin) and fails with ErrPinConflict when it is another shard.
// A chooser that cannot decide (an empty answer, or an error: a model it has
// no rule for, a NULL shard key, a key its directory does not hold) leaves
// the object to the pin, as before the check: the caller named the shard.
func (s *Session) checkPin(ctx context.Context, op string, mi *modelInfo, obj reflect.Value, pin writePin, at int) (ShardID, error) {
	id, err := s.shardChooser.ChooseShard(chooser.WithPin(ctx, pin.id), mi.table, obj.Addr().Interface())
	if cerr := ctx.Err(); cerr != nil {
		return "", fmt.Errorf("session: %s %s: %w", op, describe(mi, obj, at), cerr)
	}
	if errors.Is(err, chooser.ErrRefused) {
		return "", fmt.Errorf("session: %s %s: %w", op, describe(mi, obj, at), err)
	}
	if err != nil || id == "" || id == pin.id {
		return pin.id, nil
	}
	fix := "PinWins()"
	if s.at.unitOf() != nil {
		fix = "UnitPinWins() at Begin"
	}
	by := "the ShardChooser"
	if str, ok := s.shardChooser.(fmt.Stringer); ok {
		by += " " + str.String()
	}
	return "", fmt.Errorf("%w: %s %s: the statement is pinned to shard %s by %s, but %s places the object on shard %s, "+
		"where its reads look; a pin never moves a row off its own shard: fix the pin, or pass %s to write it on %s anyway",
		ErrPinConflict, op, describe(mi, obj, at), pin.id, pin.what(), by, id, fix, pin.id)
}

// vetWrite asks the session's ShardChooser, when it is a
// chooser.WriteRouter (a chooser.Routers chain is), about an object whose
// shard id is already decided, by its Token or a pin (what says which), as
// Django asks db_for_write with the instance: the router may refuse the
// write (its error is returned, naming it), abstain, or name id. Naming
// another shard is ErrWouldMove, naming both: a row is never moved between
// shards by a router. With PinWins (wins) only a refusal counts.
func (s *Session) vetWrite(ctx context.Context, op string, mi *modelInfo, obj reflect.Value, id ShardID, what string, wins bool, at int) error {
	wr, ok := s.shardChooser.(chooser.WriteRouter)
	if !ok {
		return nil
	}
	t, err := wr.RouteWrite(ctx, &chooser.Write{Table: mi.table, Obj: obj.Addr().Interface(), Shard: id})
	switch {
	case err != nil:
		return fmt.Errorf("session: %s %s: %w", op, describe(mi, obj, at), err)
	case wins || t.IsNone() || len(t.List()) == 1 && t.List()[0] == id:
		return nil
	}
	return fmt.Errorf("%w: %s %s: the object is on shard %s (by %s) but %v routes the write to %v; "+
		"a router never moves a row between shards (delete it on %s and insert it where it belongs)",
		ErrWouldMove, op, describe(mi, obj, at), id, what, s.shardChooser, t, id)
}
