package loader

import (
	"reflect"
	"unsafe"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// key matches loaded rows to parents: an int64 for the common single
// integer column (no allocation per row), else a canonical value; both are
// identity's one canonical form (identity.ScalarOf, identity.Canonical).
type key struct {
	n    int64
	v    any
	null bool
}

// keyIndex maps the key values of a group's parents to those parents.
type keyIndex struct {
	ints bool // one integer column: keys are key.n
	// childOff is the offset of the loaded rows' key field when it is an
	// int64 directly in the struct (read without reflect), else ^0.
	childOff uintptr
	byInt    map[int64][]int
	byAny    map[any][]int
	order    []key   // distinct keys, in first-seen order
	raw      [][]any // the values of each distinct key, for the IN list
	active   []int   // parents with a non-NULL key

	childField *schema.Field // the rows' key field, in ints mode
}

func isInt(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return true
	}
	return false
}

// newKeyIndex indexes the parents idx of parents by the values of fields;
// loaded rows will be matched by the values of their childFields.
func newKeyIndex(fields, childFields []*schema.Field, parents []reflect.Value, idx []int) *keyIndex {
	ki := &keyIndex{ints: len(fields) == 1 && len(childFields) == 1 &&
		isInt(fields[0].StructField.Type) && isInt(childFields[0].StructField.Type)}
	ki.childOff = ^uintptr(0)
	if ki.ints {
		ki.byInt = make(map[int64][]int, len(idx))
		if f := childFields[0]; len(f.Index) == 1 && f.StructField.Type.Kind() == reflect.Int64 {
			ki.childOff = f.StructField.Offset
		}
		ki.childField = childFields[0]
	} else {
		ki.byAny = make(map[any][]int, len(idx))
	}
	for _, i := range idx {
		k := ki.keyOf(fields, parents[i])
		if k.null {
			continue
		}
		ki.active = append(ki.active, i)
		var seen bool
		if ki.ints {
			_, seen = ki.byInt[k.n]
			ki.byInt[k.n] = append(ki.byInt[k.n], i)
		} else {
			_, seen = ki.byAny[k.v]
			ki.byAny[k.v] = append(ki.byAny[k.v], i)
		}
		if !seen {
			ki.order = append(ki.order, k)
			if !ki.ints {
				vals, _ := values(fields, parents[i])
				ki.raw = append(ki.raw, vals)
			}
		}
	}
	return ki
}

// members returns the parents that have a non-NULL key.
func (ki *keyIndex) members() []int { return ki.active }

// keyOf returns the key of the struct v in fields (which must hold the
// same kind of values as the index's parent fields).
func (ki *keyIndex) keyOf(fields []*schema.Field, v reflect.Value) key {
	if ki.ints {
		fv, err := v.FieldByIndexErr(fields[0].Index)
		if err != nil {
			return key{null: true}
		}
		// identity's canonical form, as the identity map and the choosers
		// read keys; for an integer it allocates nothing.
		if k := identity.ScalarOfValue(fv); k.Kind == identity.ScalarInt {
			return key{n: int64(k.N)}
		}
		return key{null: true}
	}
	vals, ok := values(fields, v)
	if !ok {
		return key{null: true}
	}
	return key{v: identity.Canonical(vals...)}
}

// childInt returns the integer key of the loaded row p (a pointer to a
// struct of type t), in ints mode.
func (ki *keyIndex) childInt(t reflect.Type, p unsafe.Pointer) int64 {
	if ki.childOff != ^uintptr(0) {
		return *(*int64)(unsafe.Add(p, ki.childOff))
	}
	return ki.keyOf([]*schema.Field{ki.childField}, reflect.NewAt(t, p).Elem()).n
}

// parentsOfRow returns the parents of row r of res.
func (ki *keyIndex) parentsOfRow(res *found, r int) []int {
	if ki.ints {
		return ki.byInt[res.ints[r]]
	}
	return ki.byAny[res.anys[r]]
}

// whereIn adds "(cols) IN (the index's keys)" to q.
func whereIn(q *bun.SelectQuery, cols []*schema.Field, ki *keyIndex) *bun.SelectQuery {
	const alias = "?TableAlias"
	if ki.ints {
		ns := make([]int64, len(ki.order))
		for i, k := range ki.order {
			ns[i] = k.n
		}
		return q.Where(alias+".? IN (?)", bun.Safe(cols[0].SQLName), bun.List(ns))
	}
	if len(cols) == 1 {
		vs := make([]any, len(ki.raw))
		for i, r := range ki.raw {
			vs[i] = r[0]
		}
		return q.Where(alias+".? IN (?)", bun.Safe(cols[0].SQLName), bun.List(vs))
	}
	names := make([]byte, 0, 32)
	args := make([]any, 0, len(cols)+1)
	names = append(names, '(')
	for i, c := range cols {
		if i > 0 {
			names = append(names, ", "...)
		}
		names = append(names, alias+".?"...)
		args = append(args, bun.Safe(c.SQLName))
	}
	names = append(names, ") IN (?)"...)
	tuples := make([]bun.TupleValues, len(ki.raw))
	for i, r := range ki.raw {
		tuples[i] = bun.Tuple(r)
	}
	args = append(args, bun.List(tuples))
	return q.Where(string(names), args...)
}
