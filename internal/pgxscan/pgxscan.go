// Package pgxscan runs a Bun select of a table model over pgx directly when
// the shard's *bun.DB is backed by pgx's database/sql driver
// (github.com/jackc/pgx/v5/stdlib), skipping database/sql and Bun's
// per-column scan calls, and falls back to Bun's own Scan everywhere else.
//
// The fast path is an implementation of what Bun v1.3.0's
// SelectQuery.Scan does for a table model over stdlib, not an
// approximation of it: the same SQL text (Bun renders it, a context
// comment included), sent on a connection of the same pool with the same
// result formats; each column converted to the value stdlib's Rows.Next
// would hand database/sql (the same pgtype scan plans), and scanned into
// its field by the field's own Bun scanner (schema.Field.ScanValue), with
// the column lookup, slice growth, sql.ErrNoRows and DBStats counting of
// Bun. Only where that is the identity is a step skipped: a column whose
// Bun scanner is Bun's default one for an int64, float64, string, bool or
// time.Time field, given the Go value it sets as is, is stored straight
// into the field, without boxing the value in an interface.
//
// It is taken only when nothing else can see or change the statement or
// its rows (see eligible): no Bun query hooks, no read-only replica
// resolver, no DB flags, no model hooks (BeforeSelect, AfterSelect,
// BeforeAppendModel, BeforeScanRow, AfterScanRow), no joined relations, a
// *bun.DB (not a transaction or bun.Conn) on pgdialect over stdlib. A
// connection that fails before the statement is sent falls back to Bun,
// which retries as database/sql does.
package pgxscan

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// Scan runs q, a select built on db (db.NewSelect()...) with a table
// model and no destination arguments, exactly as q.Scan(ctx) would, and
// returns what q.Scan would return. It takes pgx directly when eligible
// and calls q.Scan(ctx) otherwise; it never fails where q.Scan would not.
func Scan(ctx context.Context, db bun.IDB, q *bun.SelectQuery) error {
	if ok, err := scanFast(ctx, db, q); ok {
		return err
	}
	return q.Scan(ctx)
}

// Disabled turns the fast path off for the whole process (a test's
// switch, and an escape hatch): every Scan is Bun's.
var Disabled atomic.Bool

// Taken counts the statements the fast path ran (for tests).
var Taken atomic.Int64

// errFallback: the statement was not sent; Bun runs it.
var errFallback = errors.New("pgxscan: fall back to Bun")

// scanFast runs q over pgx if it is eligible; ok reports whether it did
// (err is then q.Scan's result).
func scanFast(ctx context.Context, idb bun.IDB, q *bun.SelectQuery) (ok bool, err error) {
	if Disabled.Load() || !internals.ok {
		return false, nil
	}
	db, isDB := idb.(*bun.DB)
	if !isDB || q.DB() != db {
		return false, nil
	}
	di := infoOf(db)
	if di == nil || len(*di.hooks) != 0 || *di.resolver != nil || *di.flags != 0 {
		return false, nil
	}
	tm, ok := q.GetModel().(bun.TableModel)
	if !ok {
		return false, nil
	}
	shape := shapeOf(tm)
	if shape == nil {
		return false, nil
	}
	joins := internals.structJoins
	if !shape.single {
		joins = internals.sliceJoins
	}
	if reflect.ValueOf(tm).Elem().FieldByIndex(joins).Len() != 0 {
		return false, nil
	}
	dest := reflect.ValueOf(tm.Value())
	if dest.Kind() != reflect.Pointer || dest.IsNil() {
		return false, nil
	}
	// SelectQuery.Scan applies a comment carried by ctx to the query.
	if c, _ := ctx.Value(internals.commentKey).(string); c != "" {
		q.Comment(c)
	}
	query, err := q.AppendQuery(db.QueryGen(), nil)
	if err != nil {
		return false, nil // Bun's Scan reports it
	}
	conn, err := di.sqldb.Conn(ctx)
	if err != nil {
		return false, nil
	}
	defer conn.Close()
	var n int
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok || sc.Conn().IsClosed() {
			return errFallback
		}
		atomic.AddUint32(&di.stats.Queries, 1)
		rows, err := sc.Conn().Query(ctx, string(query), resultFormats)
		if err != nil {
			if pgconn.SafeToRetry(err) { // not sent: stdlib says ErrBadConn and database/sql retries
				atomic.AddUint32(&di.stats.Queries, ^uint32(0))
				return driver.ErrBadConn
			}
			return err
		}
		defer rows.Close()
		n, err = scanRows(rows, sc.Conn().TypeMap(), shape, dest.Elem())
		return err
	})
	if errors.Is(err, errFallback) || errors.Is(err, driver.ErrBadConn) {
		return false, nil
	}
	Taken.Add(1)
	if err == nil && n == 0 && shape.single {
		err = sql.ErrNoRows
	}
	if err != nil && err != sql.ErrNoRows {
		atomic.AddUint32(&di.stats.Errors, 1)
	}
	return true, err
}

// resultFormats are stdlib's: binary for these types, text for the rest.
var resultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID:        1,
	pgtype.ByteaOID:       1,
	pgtype.CIDOID:         1,
	pgtype.DateOID:        1,
	pgtype.Float4OID:      1,
	pgtype.Float8OID:      1,
	pgtype.Int2OID:        1,
	pgtype.Int4OID:        1,
	pgtype.Int8OID:        1,
	pgtype.OIDOID:         1,
	pgtype.TimestampOID:   1,
	pgtype.TimestamptzOID: 1,
	pgtype.XIDOID:         1,
}

// shape is what a table model's scan needs, computed once per model type.
type shape struct {
	table  *schema.Table
	single bool // a struct (one row, sql.ErrNoRows on none); else a slice
	ptrs   bool // a slice of pointers
	elem   reflect.Type
	direct map[*schema.Field]direct
}

// direct is a field Bun's default scanner sets as is from one Go type.
type direct struct {
	kind kind
	off  uintptr
}

type kind uint8

const (
	kGeneric kind = iota
	kInt64
	kFloat64
	kString
	kBool
	kTime
)

// shapes caches a shape per table (a dialect's) and model value type.
var shapes sync.Map // shapeKey -> *shape (nil: not eligible)

type shapeKey struct {
	table *schema.Table
	typ   reflect.Type
}

func shapeOf(tm bun.TableModel) *shape {
	k := shapeKey{tm.Table(), reflect.TypeOf(tm.Value())}
	if v, ok := shapes.Load(k); ok {
		return v.(*shape)
	}
	s := newShape(tm)
	shapes.Store(k, s)
	return s
}

func newShape(tm bun.TableModel) *shape {
	t := tm.Table()
	mt := reflect.TypeOf(tm)
	if t == nil || (mt != internals.structModel && mt != internals.sliceModel) {
		return nil
	}
	if t.HasBeforeScanRowHook() || t.HasAfterScanRowHook() || t.HasBeforeAppendModelHook() {
		return nil
	}
	if _, ok := t.ZeroIface.(bun.BeforeSelectHook); ok {
		return nil
	}
	if _, ok := t.ZeroIface.(bun.AfterSelectHook); ok {
		return nil
	}
	vt := reflect.TypeOf(tm.Value())
	if vt.Kind() != reflect.Pointer {
		return nil
	}
	s := &shape{table: t, direct: map[*schema.Field]direct{}}
	switch et := vt.Elem(); {
	case et == t.Type && mt == internals.structModel:
		s.single = true
	case et.Kind() == reflect.Slice && et.Elem() == t.Type && mt == internals.sliceModel:
		s.elem = t.Type
	case et.Kind() == reflect.Slice && et.Elem().Kind() == reflect.Pointer && et.Elem().Elem() == t.Type && mt == internals.sliceModel:
		s.elem, s.ptrs = t.Type, true
	default:
		return nil
	}
	for _, f := range t.Fields {
		if d, ok := directOf(t.Type, f); ok {
			s.direct[f] = d
		}
	}
	return s
}

var directTypes = map[reflect.Type]kind{
	reflect.TypeFor[int64]():     kInt64,
	reflect.TypeFor[float64]():   kFloat64,
	reflect.TypeFor[string]():    kString,
	reflect.TypeFor[bool]():      kBool,
	reflect.TypeFor[time.Time](): kTime,
}

// directOf reports whether f's value may be stored straight into its
// memory: its type is one of directTypes exactly, it is reached through
// no pointer (Bun allocates embedded pointers as it scans), and its
// scanner is Bun's default one for the type (no tag or dialect chose
// another).
func directOf(typ reflect.Type, f *schema.Field) (direct, bool) {
	var off uintptr
	for i, x := range f.Index {
		if typ.Kind() != reflect.Struct {
			return direct{}, false
		}
		sf := typ.Field(x)
		off += sf.Offset
		typ = sf.Type
		if i < len(f.Index)-1 && typ.Kind() != reflect.Struct {
			return direct{}, false
		}
	}
	k, ok := directTypes[typ]
	if !ok || typ != f.StructField.Type || f.Scan == nil {
		return direct{}, false
	}
	if reflect.ValueOf(f.Scan).Pointer() != reflect.ValueOf(schema.Scanner(typ)).Pointer() {
		return direct{}, false
	}
	return direct{kind: k, off: off}, true
}

// column is one result column: its field (nil: ignored, as Bun ignores
// "" and "_..." columns), how its value is converted and stored.
type column struct {
	name    string // as the server sent it
	field   *schema.Field
	unknown string // a column Bun would refuse, with Bun's error
	kind    kind
	off     uintptr
	plan    pgtype.ScanPlan
	oid     uint32
	value   func([]byte) (driver.Value, error) // stdlib's conversion
}

// cell holds one column's converted value of the current row.
type cell struct {
	null bool
	i    int64
	f    float64
	s    string
	b    bool
	t    time.Time
	v    driver.Value
}

func columnsOf(rows pgx.Rows, m *pgtype.Map, s *shape) []column {
	fds := rows.FieldDescriptions()
	cols := make([]column, len(fds))
	for i, fd := range fds {
		c := &cols[i]
		c.name = fd.Name
		name := unquote(fd.Name)
		c.field = lookup(s.table, name)
		if c.field == nil && name != "" && name[0] != '_' {
			c.unknown = fmt.Sprintf("bun: %s does not have column %q", s.table.TypeName, name)
		}
		c.value = valueFunc(m, fd.DataTypeOID, fd.Format)
		c.oid = fd.DataTypeOID
		d, ok := s.direct[c.field]
		if !ok {
			continue
		}
		// The stdlib value of this column type, and whether Bun's
		// default scanner for the field sets that value as is.
		switch {
		case d.kind == kInt64 && (c.oid == pgtype.Int8OID || c.oid == pgtype.Int4OID || c.oid == pgtype.Int2OID):
		case d.kind == kFloat64 && (c.oid == pgtype.Float8OID || c.oid == pgtype.Float4OID):
		case d.kind == kString && stringOID(c.oid):
		case d.kind == kBool && c.oid == pgtype.BoolOID:
		case d.kind == kTime && (c.oid == pgtype.TimestamptzOID || c.oid == pgtype.TimestampOID):
		default:
			continue
		}
		c.kind, c.off = d.kind, d.off
		switch c.oid {
		case pgtype.Int8OID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(int64))
		case pgtype.Int4OID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(int32))
		case pgtype.Int2OID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(int16))
		case pgtype.Float8OID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(float64))
		case pgtype.Float4OID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(float32))
		case pgtype.BoolOID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(bool))
		case pgtype.TimestamptzOID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(pgtype.Timestamptz))
		case pgtype.TimestampOID:
			c.plan = m.PlanScan(c.oid, fd.Format, new(pgtype.Timestamp))
		default:
			c.plan = m.PlanScan(c.oid, fd.Format, new(string))
		}
	}
	return cols
}

// lookup finds column's field as Bun's structTableModel.scanColumn does
// for a model without joins: the field, else "model__column" of its own
// model name.
func lookup(t *schema.Table, column string) *schema.Field {
	if f := t.LookupField(column); f != nil {
		return f
	}
	if join, rest := splitColumn(column); join != "" && join == t.ModelName {
		return lookup(t, rest)
	}
	return nil
}

func splitColumn(s string) (string, string) {
	if i := strings.Index(s, "__"); i >= 0 {
		return s[:i], s[i+2:]
	}
	return "", s
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// stringOID reports whether stdlib converts a column of type oid to a Go
// string (its default case).
func stringOID(oid uint32) bool {
	switch oid {
	case pgtype.BoolOID, pgtype.ByteaOID, pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID, pgtype.DateOID,
		pgtype.Float4OID, pgtype.Float8OID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID,
		pgtype.JSONOID, pgtype.JSONBOID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.XMLOID:
		return false
	}
	return true
}

// convert converts raw (non-nil) into c's cell as stdlib's Rows.Next
// would, wrapping errors as it does.
func (c *column) convert(i int, raw []byte, x *cell) error {
	var err error
	switch c.kind {
	case kGeneric:
		x.v, err = c.value(raw)
	case kInt64:
		switch c.oid {
		case pgtype.Int8OID:
			err = c.plan.Scan(raw, &x.i)
		case pgtype.Int4OID:
			var d int32
			err = c.plan.Scan(raw, &d)
			x.i = int64(d)
		default:
			var d int16
			err = c.plan.Scan(raw, &d)
			x.i = int64(d)
		}
	case kFloat64:
		if c.oid == pgtype.Float8OID {
			err = c.plan.Scan(raw, &x.f)
		} else {
			var d float32
			err = c.plan.Scan(raw, &d)
			x.f = float64(d)
		}
	case kString:
		err = c.plan.Scan(raw, &x.s)
	case kBool:
		err = c.plan.Scan(raw, &x.b)
	case kTime:
		// stdlib hands database/sql ts.Value(): the time, or for
		// ±infinity a string (which Bun's scanner then parses).
		var v driver.Value
		if c.oid == pgtype.TimestamptzOID {
			var d pgtype.Timestamptz
			if err = c.plan.Scan(raw, &d); err == nil {
				v, err = d.Value()
			}
		} else {
			var d pgtype.Timestamp
			if err = c.plan.Scan(raw, &d); err == nil {
				v, err = d.Value()
			}
		}
		if t, ok := v.(time.Time); ok {
			x.t, x.v = t, nil
		} else {
			x.v = v
			if v == nil {
				x.null = true
			}
		}
	}
	if err != nil {
		return fmt.Errorf("convert field %d failed: %w", i, err)
	}
	return nil
}

// store scans c's cell into strct as Bun would (field.ScanValue), storing
// it straight into the field where that is what Bun's scanner does.
func (c *column) store(strct reflect.Value, base unsafe.Pointer, x *cell) error {
	if c.unknown != "" {
		return errors.New(c.unknown)
	}
	f := c.field
	if f == nil {
		return nil
	}
	if x.null {
		return f.ScanValue(strct, nil)
	}
	p := unsafe.Add(base, c.off)
	switch c.kind {
	case kInt64:
		*(*int64)(p) = x.i
	case kFloat64:
		*(*float64)(p) = x.f
	case kString:
		*(*string)(p) = x.s
	case kBool:
		*(*bool)(p) = x.b
	case kTime:
		if x.v != nil { // ±infinity: Bun's scanner gets the string
			return f.ScanValue(strct, x.v)
		}
		*(*time.Time)(p) = x.t
	default:
		return f.ScanValue(strct, x.v)
	}
	return nil
}

// scanRows scans rows into v (the model's struct, or its slice) as Bun's
// structTableModel and sliceTableModel ScanRows do, returning the number
// of rows.
func scanRows(rows pgx.Rows, m *pgtype.Map, s *shape, v reflect.Value) (int, error) {
	cols := columnsOf(rows, m, s)
	cells := make([]cell, len(cols))
	// next reads and converts one row, as database/sql's Rows.Next does
	// (stdlib converts every column before any is scanned).
	next := func() (bool, error) {
		if !rows.Next() {
			return false, rows.Err()
		}
		for i, raw := range rows.RawValues() {
			x := &cells[i]
			x.v = nil
			x.null = raw == nil
			if raw == nil {
				continue
			}
			if err := cols[i].convert(i, raw, x); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	// storeRow scans the row into strct, as database/sql's Rows.Scan
	// calls Bun's scanner column by column, wrapping its errors.
	storeRow := func(strct reflect.Value) error {
		base := strct.Addr().UnsafePointer()
		for i := range cols {
			if err := cols[i].store(strct, base, &cells[i]); err != nil {
				return fmt.Errorf("sql: Scan error on column index %d, name %q: %w", i, cols[i].name, err)
			}
		}
		return nil
	}
	if s.single {
		ok, err := next()
		if !ok {
			return 0, err
		}
		if err := storeRow(v); err != nil {
			return 0, err
		}
		n := 1
		for rows.Next() { // Bun reads and discards the rest
			n++
		}
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return n, nil
	}
	if v.Len() > 0 {
		v.Set(v.Slice(0, 0))
	}
	n := 0
	for {
		ok, err := next()
		if err != nil {
			return 0, err
		}
		if !ok {
			return n, nil
		}
		if err := storeRow(nextElem(v, s)); err != nil {
			return 0, err
		}
		n++
	}
}

// nextElem grows the slice v by one element and returns it (the struct),
// as Bun's internal.MakeSliceNextElemFunc does: reusing the capacity, and
// for a slice of pointers the pointers already there.
func nextElem(v reflect.Value, s *shape) reflect.Value {
	if s.ptrs {
		if v.Len() < v.Cap() {
			v.Set(v.Slice(0, v.Len()+1))
			elem := v.Index(v.Len() - 1)
			if elem.IsNil() {
				elem.Set(reflect.New(s.elem))
			}
			return elem.Elem()
		}
		elem := reflect.New(s.elem)
		v.Set(reflect.Append(v, elem))
		return elem.Elem()
	}
	if v.Len() < v.Cap() {
		v.Set(v.Slice(0, v.Len()+1))
		return v.Index(v.Len() - 1)
	}
	v.Set(reflect.Append(v, reflect.Zero(s.elem)))
	return v.Index(v.Len() - 1)
}

// valueFunc is stdlib's Rows.initValueFuncs for one column (pgx v5.12.0):
// the driver.Value database/sql hands to Bun's scanner.
func valueFunc(m *pgtype.Map, oid uint32, format int16) func([]byte) (driver.Value, error) {
	switch oid {
	case pgtype.BoolOID:
		return plainFunc[bool](m, oid, format)
	case pgtype.ByteaOID:
		return plainFunc[[]byte](m, oid, format)
	case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		return valuerFunc[pgtype.Uint32](m, oid, format)
	case pgtype.DateOID:
		return valuerFunc[pgtype.Date](m, oid, format)
	case pgtype.Float4OID:
		var d float32
		plan := m.PlanScan(oid, format, &d)
		return func(src []byte) (driver.Value, error) { err := plan.Scan(src, &d); return float64(d), err }
	case pgtype.Float8OID:
		return plainFunc[float64](m, oid, format)
	case pgtype.Int2OID:
		var d int16
		plan := m.PlanScan(oid, format, &d)
		return func(src []byte) (driver.Value, error) { err := plan.Scan(src, &d); return int64(d), err }
	case pgtype.Int4OID:
		var d int32
		plan := m.PlanScan(oid, format, &d)
		return func(src []byte) (driver.Value, error) { err := plan.Scan(src, &d); return int64(d), err }
	case pgtype.Int8OID:
		return plainFunc[int64](m, oid, format)
	case pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
		var d []byte
		plan := m.PlanScan(oid, format, &d)
		return func(src []byte) (driver.Value, error) {
			if err := plan.Scan(src, &d); err != nil {
				return nil, err
			}
			return d, nil
		}
	case pgtype.TimestampOID:
		return valuerFunc[pgtype.Timestamp](m, oid, format)
	case pgtype.TimestamptzOID:
		return valuerFunc[pgtype.Timestamptz](m, oid, format)
	default:
		return plainFunc[string](m, oid, format)
	}
}

// plainFunc is valueFunc for a column pgx scans into a T that is itself the
// driver.Value (returned with the scan's error, as stdlib does).
func plainFunc[T any](m *pgtype.Map, oid uint32, format int16) func([]byte) (driver.Value, error) {
	var d T
	plan := m.PlanScan(oid, format, &d)
	return func(src []byte) (driver.Value, error) { err := plan.Scan(src, &d); return d, err }
}

// valuerFunc is valueFunc for a column pgx scans into a pgtype T whose
// Value method gives the driver.Value (nil and the error when the scan
// fails).
func valuerFunc[T any, P interface {
	*T
	driver.Valuer
}](m *pgtype.Map, oid uint32, format int16) func([]byte) (driver.Value, error) {
	d := P(new(T))
	plan := m.PlanScan(oid, format, d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, d); err != nil {
			return nil, err
		}
		return d.Value()
	}
}

// dbInfo is a *bun.DB's state the fast path must read: Bun keeps it
// unexported, so it is found by reflection once per handle (see
// internals).
type dbInfo struct {
	sqldb    *sql.DB
	hooks    *[]bun.QueryHook
	resolver *bun.ConnResolver
	flags    *uint64
	stats    *bun.DBStats
}

var dbInfos sync.Map // *bun.DB -> *dbInfo (nil: not eligible)

func infoOf(db *bun.DB) *dbInfo {
	if v, ok := dbInfos.Load(db); ok {
		return v.(*dbInfo)
	}
	di := newInfo(db)
	dbInfos.Store(db, di)
	return di
}

func newInfo(db *bun.DB) *dbInfo {
	if db.DB == nil || db.Dialect().Name() != dialect.PG {
		return nil
	}
	if _, ok := db.DB.Driver().(*stdlib.Driver); !ok {
		return nil
	}
	v := reflect.ValueOf(db).Elem()
	st := v.FieldByName("noCopyState")
	if !st.IsValid() || st.Kind() != reflect.Pointer || st.IsNil() {
		return nil
	}
	st = st.Elem()
	get := func(v reflect.Value, name string, typ reflect.Type) unsafe.Pointer {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Type() != typ || !f.CanAddr() {
			return nil
		}
		return unsafe.Pointer(f.UnsafeAddr())
	}
	hooks := get(v, "queryHooks", reflect.TypeFor[[]bun.QueryHook]())
	resolver := get(st, "resolver", reflect.TypeFor[bun.ConnResolver]())
	stats := get(st, "stats", reflect.TypeFor[bun.DBStats]())
	var flags unsafe.Pointer
	if f := st.FieldByName("flags"); f.IsValid() && f.Kind() == reflect.Uint64 && f.CanAddr() {
		flags = unsafe.Pointer(f.UnsafeAddr())
	}
	if hooks == nil || resolver == nil || stats == nil || flags == nil {
		return nil
	}
	return &dbInfo{
		sqldb:    db.DB,
		hooks:    (*[]bun.QueryHook)(hooks),
		resolver: (*bun.ConnResolver)(resolver),
		flags:    (*uint64)(flags),
		stats:    (*bun.DBStats)(stats),
	}
}

// internals are the parts of Bun v1.3.0 the fast path depends on, found
// once; if any is missing (another Bun), ok is false and every Scan is
// Bun's.
var internals = func() (in struct {
	ok          bool
	structModel reflect.Type // *bun.structTableModel
	sliceModel  reflect.Type // *bun.sliceTableModel
	structJoins []int        // the index of their joins field
	sliceJoins  []int
	commentKey  any // bun.WithComment's context key
}) {
	type row struct {
		bun.BaseModel `bun:"table:pgxscan_probe"`
		ID            int64 `bun:",pk"`
	}
	db := bun.NewDB(nil, pgdialect.New())
	one, many := db.NewSelect().Model(new(row)), db.NewSelect().Model(new([]row))
	in.structModel, in.sliceModel = reflect.TypeOf(one.GetModel()), reflect.TypeOf(many.GetModel())
	if in.structModel == nil || in.sliceModel == nil || in.structModel.Kind() != reflect.Pointer ||
		in.sliceModel.Kind() != reflect.Pointer || in.structModel == in.sliceModel {
		return in
	}
	jf, ok := in.structModel.Elem().FieldByName("joins")
	if !ok || jf.Type.Kind() != reflect.Slice {
		return in
	}
	sf, ok := in.sliceModel.Elem().FieldByName("joins")
	if !ok || sf.Type != jf.Type {
		return in
	}
	in.structJoins, in.sliceJoins = jf.Index, sf.Index
	// The comment key: the key of the context bun.WithComment returns.
	ctx := bun.WithComment(context.Background(), "pgxscan")
	cv := reflect.ValueOf(ctx)
	if cv.Kind() != reflect.Pointer || cv.Elem().Kind() != reflect.Struct {
		return in
	}
	kf := cv.Elem().FieldByName("key")
	if !kf.IsValid() || kf.Kind() != reflect.Interface || !kf.CanAddr() {
		return in
	}
	key := *(*any)(unsafe.Pointer(kf.UnsafeAddr()))
	if s, _ := ctx.Value(key).(string); s != "pgxscan" {
		return in
	}
	in.commentKey = key
	in.ok = true
	return in
}()
