package loader

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Folder is an extra ability of a [Conns], found by type assertion:
// sending the statements of several shards that share one database as one
// statement. Package session's Conns is one under its WithFolding option.
// A [Load] whose Conns is a Folder asks it which of its statements fold,
// and sends each folded group through QueryFolded; the rows come back
// tagged with the statement they belong to, and are matched to the parents
// of that statement only, so equal keys on two shards never meet.
//
// Load does not fold m2m relations (their rows carry a joined model), nor
// relations whose model has a BeforeSelect or AfterSelect hook (the hook is
// given one shard's query, which a folded statement does not run).
type Folder interface {
	// Fold returns which of targets (the shard of each of a load's
	// statements, in order; a shard may appear more than once) go as one
	// statement: lists of indices into targets, where a list of several
	// is sent as one statement on its first target's connection and a list
	// of one alone. nil means that nothing folds: one statement per target.
	Fold(ctx context.Context, targets []identity.ShardID) [][]int
	// QueryFolded sends one statement for targets[members...]: the select
	// of each member i, built by build on the handle of targets[i] (so
	// that the shard's named arguments, such as its table prefix, apply),
	// with i as an integer in a first column of its rows. The caller closes
	// the rows. An error fails every member.
	QueryFolded(ctx context.Context, targets []identity.ShardID, members []int, build func(db bun.IDB, i int) *bun.SelectQuery) (*sql.Rows, error)
}

// units returns the load's statements: lists of indices into l.tasks, one
// per statement sent; several when a [Folder] folds them. targets are the
// tasks' shards, as the Folder was told.
func (l *load) units(ctx context.Context) ([]identity.ShardID, [][]int) {
	one := func() [][]int {
		out := make([][]int, len(l.tasks))
		for i := range out {
			out[i] = []int{i}
		}
		return out
	}
	f, ok := l.conns.(Folder)
	if !ok || len(l.tasks) < 2 || !l.folds() {
		return nil, one()
	}
	targets := make([]identity.ShardID, len(l.tasks))
	for i, t := range l.tasks {
		targets[i] = t.target
	}
	groups := f.Fold(ctx, targets)
	if groups == nil {
		return nil, one()
	}
	return targets, groups
}

// folds reports whether the relation's statements may fold: rows of the
// related model only, scanned as Bun scans them, with no hook that is
// given the query.
func (l *load) folds() bool {
	if l.rel.Type == schema.ManyToManyRelation {
		return false
	}
	ptr := reflect.PointerTo(l.rel.JoinTable.Type)
	return !ptr.Implements(reflect.TypeFor[bun.BeforeSelectHook]()) && !ptr.Implements(reflect.TypeFor[bun.AfterSelectHook]())
}

// execFolded runs the tasks members (indices into l.tasks and targets) as
// one statement and records what each found in its slot; a failure fails
// them all, named by the first.
func (l *load) execFolded(ctx context.Context, targets []identity.ShardID, members []int) error {
	names := make([]string, len(members))
	for j, i := range members {
		names[j] = string(targets[i])
	}
	op := "load " + l.table.TypeName + "." + l.rel.Field.GoName + " (folded: one statement for shards " + strings.Join(names, ", ") + ")"
	lead := l.tasks[members[0]].target
	ctx, db, err := l.conns.Conn(ctx, lead)
	if err != nil {
		return &ShardError{Shard: lead, Op: op, Err: err}
	}
	if err := l.queryFolded(ctx, db, targets, members); err != nil {
		return &ShardError{Shard: lead, Op: op, Err: err}
	}
	return nil
}

// queryFolded sends the folded statement of members and splits its rows
// back by their tag: each row goes to its own task, keyed and stamped
// as that task's rows are when it runs alone.
func (l *load) queryFolded(ctx context.Context, db bun.IDB, targets []identity.ShardID, members []int) error {
	jt := l.rel.JoinTable
	slices := reflect.SliceOf(reflect.PointerTo(jt.Type))
	rows, err := l.conns.(Folder).QueryFolded(ctx, targets, members, func(db bun.IDB, i int) *bun.SelectQuery {
		return l.relSelect(db, l.tasks[i], reflect.New(slices).Interface())
	})
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return fmt.Errorf("a folded statement returned no columns; want its shard tag first")
	}
	row := reflect.New(jt.Type)
	m, ok := db.NewSelect().Model(row.Interface()).GetModel().(bun.TableModel)
	if !ok {
		return fmt.Errorf("bun gave no table model for %s", jt.TypeName)
	}
	var tag int64
	dest := make([]any, len(cols))
	dest[0] = &tag
	for c := 1; c < len(cols); c++ {
		dest[c] = &modelColumn{m: m, name: cols[c]}
	}
	slot := make(map[int64]int, len(members)) // tag -> its index in members
	for j, i := range members {
		slot[int64(i)] = j
	}
	objs := make([][]unsafe.Pointer, len(members))
	elem := row.Elem()
	for rows.Next() {
		elem.SetZero() // no pointer or slice of one row is shared with the next
		if err := m.BeforeScanRow(ctx); err != nil {
			return err
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := m.AfterScanRow(ctx); err != nil {
			return err
		}
		j, ok := slot[tag]
		if !ok {
			return fmt.Errorf("a folded row carries shard tag %d, which names no statement of the group", tag)
		}
		obj := reflect.New(jt.Type)
		obj.Elem().Set(elem)
		objs[j] = append(objs[j], obj.UnsafePointer())
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for j, i := range members {
		t := l.tasks[i]
		t.g.results[t.slot] = l.found(t, objs[j])
	}
	return nil
}

// modelColumn scans one column into the row model m, as Bun's own row scan
// does.
type modelColumn struct {
	m    bun.TableModel
	name string
}

func (c *modelColumn) Scan(src any) error { return c.m.ScanColumn(c.name, src) }
