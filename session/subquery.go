package session

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// subquery is a Bun query passed as an argument of a builder call, such as
// Where("id IN (?)", db.NewSelect()...), directly or nested (see
// subqueriesIn). Bun inlines its SQL into the statement, so it runs on
// whatever shard the statement runs on, whichever handle it was built on.
type subquery struct {
	call string       // the builder call: "Where", "Set", ...
	arg  int          // its position among the call's arguments, from 1
	in   string       // where it sits inside the argument ("" when it is the argument)
	db   *bun.DB      // the handle it was built on
	sel  *SelectQuery // or a session select, rendered per shard (subselect.go); direct arguments only
}

// name describes where the subquery was passed: "argument 1 of Where", or
// "argument 1 of Where (element 2 of bun.In)".
func (sq subquery) name() string {
	if sq.in == "" {
		return fmt.Sprintf("argument %d of %s", sq.arg, sq.call)
	}
	return fmt.Sprintf("argument %d of %s (%s)", sq.arg, sq.call, sq.in)
}

// maxNesting bounds how deep subqueriesIn looks into an argument.
const maxNesting = 8

var (
	//lint:ignore SA1019 the deprecated form, which apps still write
	inValuesType   = reflect.TypeOf(bun.In([]int{})) // *schema.inValues, unexported
	tupleType      = reflect.TypeOf(bun.TupleValues{})
	listValuesType = reflect.TypeOf(bun.ListValues{})
	withArgsType   = reflect.TypeOf(schema.QueryWithArgs{})
	withSepType    = reflect.TypeOf(schema.QueryWithSep{})
	reflValueType  = reflect.TypeOf(reflect.Value{})
)

// subqueriesIn appends to subs the Bun queries among the arguments of call.
// It sees a plain Bun query (anything with AppendQuery and DB() *bun.DB) as
// a direct argument, and nested, to a depth of maxNesting: as an element
// of a slice or array (of any element type: []any, []*bun.SelectQuery, ...),
// of bun.In(slice), bun.List(slice) and bun.Tuple(slice), and as an argument of
// bun.SafeQuery (schema.QueryWithArgs, QueryWithSep), through pointers and
// interfaces. A session select is seen as a direct argument only (nested,
// it renders an error, never silently). Not seen: a query inside an Apply
// function (code, not a value), a map, or any other wrapper (a QueryAppender
// of its own type holding the query in its fields): such a query is inlined
// unvetted.
func subqueriesIn(subs []subquery, call string, args []any) []subquery {
	for i, a := range args {
		if sel, ok := a.(*SelectQuery); ok {
			subs = append(subs, subquery{call: call, arg: i + 1, sel: sel})
			continue
		}
		subs = nestedSubqueries(subs, subquery{call: call, arg: i + 1}, reflect.ValueOf(a), 0)
	}
	return subs
}

// nestedSubqueries appends to subs the plain Bun queries in v, at depth
// depth; at names where v sits. v is always a value that may be turned into
// an interface (fields of Bun's wrappers are made so in field).
func nestedSubqueries(subs []subquery, at subquery, v reflect.Value, depth int) []subquery {
	if !v.IsValid() || depth > maxNesting {
		return subs
	}
	if v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return subs
		}
	}
	if v.CanInterface() {
		if q, ok := v.Interface().(interface {
			schema.QueryAppender
			DB() *bun.DB
		}); ok {
			at.db = q.DB()
			return append(subs, at)
		}
	}
	within := func(what string, i int) subquery {
		part := "element"
		if what == "bun.SafeQuery" {
			part = "argument"
		}
		in := fmt.Sprintf("%s %d of %s", part, i+1, what)
		if at.in != "" {
			in = at.in + ", " + in
		}
		return subquery{call: at.call, arg: at.arg, in: in}
	}
	switch {
	case v.Type() == inValuesType:
		if rv, ok := field(v.Elem(), "slice"); ok && rv.Type() == reflValueType {
			return nestedElements(subs, within, "bun.In", rv.Interface().(reflect.Value), depth)
		}
		return subs
	case v.Type() == listValuesType, v.Type() == tupleType:
		what := "bun.List"
		if v.Type() == tupleType {
			what = "bun.Tuple"
		}
		if rv, ok := field(v, "slice"); ok {
			return nestedElements(subs, within, what, rv.Elem(), depth)
		}
		return subs
	case v.Type() == withArgsType:
		return nestedElements(subs, within, "bun.SafeQuery", v.FieldByName("Args"), depth)
	case v.Type() == withSepType:
		return nestedElements(subs, within, "bun.SafeQuery", v.FieldByName("QueryWithArgs").FieldByName("Args"), depth)
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		return nestedSubqueries(subs, at, v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		what := "the slice"
		if v.Kind() == reflect.Array {
			what = "the array"
		}
		return nestedElements(subs, within, what, v, depth)
	}
	return subs
}

// nestedElements appends to subs the plain Bun queries among the elements
// of slice (a slice or array; anything else holds none).
func nestedElements(subs []subquery, within func(string, int) subquery, what string, slice reflect.Value, depth int) []subquery {
	if !slice.IsValid() || (slice.Kind() != reflect.Slice && slice.Kind() != reflect.Array) || !mayHoldQuery(slice.Type().Elem()) {
		return subs
	}
	for i := 0; i < slice.Len(); i++ {
		subs = nestedSubqueries(subs, within(what, i), slice.Index(i), depth+1)
	}
	return subs
}

// mayHoldQuery reports whether a value of type t may be or hold a Bun
// query; it spares walking []int64 and the like.
func mayHoldQuery(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer, reflect.Slice, reflect.Array, reflect.Struct:
		return true
	}
	return false
}

// field returns the field name of struct v as a value that may be turned
// into an interface, also when the field is unexported (Bun's wrappers keep
// their slice so): v is copied to be addressable, and the field read
// through its address.
func field(v reflect.Value, name string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	f := c.FieldByName(name)
	if !f.IsValid() {
		return reflect.Value{}, false
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), true
}

// vetObjectSubqueries is vetSubqueries for a write of objects (what: "insert
// Item"), placed one by one after this check: a session select among subs
// is ErrUnsupported (with hint, what to do instead), since such a write does
// not render subqueries per shard, and a Bun subquery is only right on its
// own shard, so the statement must be pinned there (the pin of opts; no pin
// checks it against every shard). A pin conflict fails as pinned fails.
func (s *Session) vetObjectSubqueries(ctx context.Context, subs []subquery, opts []StatementOption, what, hint string) error {
	if len(subs) == 0 {
		return nil
	}
	for _, sq := range subs {
		if sq.sel != nil {
			return fmt.Errorf("%w: %s: %s is a session select; %s", ErrUnsupported, what, sq.name(), hint)
		}
	}
	o := options(opts)
	pin, err := s.pinned(ctx, &o, what)
	if err != nil {
		return err
	}
	on := s.order
	if pin.id != "" {
		on = []ShardID{pin.id}
	}
	return s.vetSubqueries(subs, on, what)
}

// vetSubqueries fails, before anything is sent, when a statement that runs
// on shards holds a subquery built on another shard's handle (primary or
// replica), or on a database that is no shard of the session: inlined, it
// would read the rows of the shard the statement runs on, not of the one it
// was built for. A subquery meant to run on each shard is built inside
// Apply, on the shard's own query (b.NewSelect()).
func (s *Session) vetSubqueries(subs []subquery, shards []ShardID, what string) error {
	for _, sq := range subs {
		if sq.sel != nil {
			for _, id := range shards {
				if _, err := sq.sel.subPlan(id); err != nil {
					return fmt.Errorf("%s: %s: %w", what, sq.name(), err)
				}
			}
			continue
		}
		home, err := s.shardOfHandle(sq.db)
		if err != nil {
			return fmt.Errorf("%w: %s: %s is a Bun query built on %v; it would run on %v instead. "+
				"Build a subquery that runs on each shard inside Apply, on the shard's query (b.NewSelect())",
				ErrInvalidArgument, what, sq.name(), err, shards)
		}
		if i := slices.IndexFunc(shards, func(id ShardID) bool { return id != home }); i >= 0 {
			return fmt.Errorf("%w: %s: %s is a Bun query built on shard %s's handle, but the statement "+
				"runs on shard %s, where it would read %s's rows instead; pin the statement to %s, or build a subquery "+
				"that runs on each shard inside Apply, on the shard's query (b.NewSelect())",
				ErrInvalidArgument, what, sq.name(), home, shards[i], shards[i], home)
		}
	}
	return nil
}

// shardOfHandle returns the shard whose primary or replica handle db is, or
// a description of db when it is none: first by identity, then by the
// connection pool it shares with exactly one shard (a clone made by
// WithQueryHook or WithNamedArg of that shard's *bun.DB).
func (s *Session) shardOfHandle(db *bun.DB) (ShardID, error) {
	if db == nil {
		return "", fmt.Errorf("no database")
	}
	var sharing []ShardID
	var pool *sql.DB = db.DB
	for _, id := range s.order {
		for _, h := range s.handles(id) {
			hdb := h.NewSelect().DB()
			if hdb == db {
				return id, nil
			}
			if hdb.DB == pool && !slices.Contains(sharing, id) {
				sharing = append(sharing, id)
			}
		}
	}
	switch len(sharing) {
	case 0:
		return "", fmt.Errorf("a database that is none of the session's shards %v", s.order)
	case 1:
		return sharing[0], nil
	}
	return "", fmt.Errorf("a handle that shares its connection pool with shards %v, so its shard is ambiguous", sharing)
}

// handles returns shard id's primary and replica handles.
func (s *Session) handles(id ShardID) []bun.IDB {
	hs := append([]bun.IDB{s.shards[id]}, s.cfg.replicas.dbs[id]...)
	if s.replicas != nil {
		if sr := s.replicas.byShard[id]; sr != nil {
			for _, r := range sr.list {
				hs = append(hs, r.db)
			}
		}
	}
	return hs
}
