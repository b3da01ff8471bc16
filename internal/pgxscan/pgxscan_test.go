package pgxscan_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/pgxscan"
	"github.com/bunshard/bunshard/shardtest"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 1, func() error { return goleak.Find() }))
}

// Celsius scans through its own sql.Scanner.
type Celsius struct{ V float64 }

func (c *Celsius) Scan(src any) error {
	switch s := src.(type) {
	case nil:
		c.V = -273.15
	case float64:
		c.V = s
	default:
		return fmt.Errorf("Celsius: cannot scan %T", src)
	}
	return nil
}

func (c Celsius) Value() (driver.Value, error) { return c.V, nil }

// MyInt is a named integer type (Bun's int scanner, not the fast store).
type MyInt int64

type Inner struct {
	EA string
	EB int64
}

type PtrInner struct {
	PA string
	PB float64
}

// Wide has a column of every kind the fast path stores directly or hands
// to Bun's field scanners.
type Wide struct {
	bun.BaseModel `bun:"table:wides"`

	ID        int64 `bun:",pk"`
	I16       int16
	I32       int32
	I         int
	I64       int64
	I4        int64 `bun:"type:integer"`  // int4 into an int64 field
	I2        int64 `bun:"type:smallint"` // int2 into an int64 field
	F32       float32
	F64       float64
	F4        float64 `bun:"type:real"` // float4 into a float64 field
	S         string
	Txt       string `bun:"type:text"`
	Ch        string `bun:"type:char(5)"`
	B         bool
	T         time.Time
	TN        time.Time `bun:"type:timestamp"`
	D         time.Time `bun:"type:date"`
	PS        *string
	PI        *int64
	PT        *time.Time
	NS        sql.NullString  `bun:"type:text"`
	J         map[string]any  `bun:"type:jsonb"`
	JR        json.RawMessage `bun:"type:json"`
	Arr       []int64         `bun:",array"`
	By        []byte
	Num       string  `bun:"type:numeric"`
	U         string  `bun:"type:uuid"`
	Iv        string  `bun:"type:interval"`
	IS        string  `bun:"type:bigint"`           // int8 into a string field
	C         Celsius `bun:"type:double precision"` // sql.Scanner
	MI        MyInt   // a named type
	JS        string  `bun:"type:jsonb"` // jsonb into a string field
	TS        string  `bun:"type:timestamptz"`
	Inner             // embedded
	*PtrInner         // embedded through a pointer
	Any       any     `bun:"type:jsonb"`
}

var wideRows = []string{
	`INSERT INTO wides VALUES (1, 1, 2, 3, 4, 5, 6, 1.5, 2.25, 3.125, 's', 'text', 'ab', true,
		'2026-03-04 05:06:07.123456+02', '2026-03-04 05:06:07.5', '2026-03-04', 'ps', 7, '2001-02-03 04:05:06Z',
		'ns', '{"a": 1, "b": [true, null]}', '{"x": "y"}', '{1,2,3}', '\xdeadbeef', '12345.678900', 
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04', 9000000000, 36.6, 42, '{"k": "v"}',
		'1999-12-31 23:59:59+00', 'ea', 8, 'pa', 0.5, '[1, "two"]')`,
	`INSERT INTO wides VALUES (2, -32768, -2147483648, -9223372036854775808, 9223372036854775807, 2147483647, 32767,
		'NaN', '-Infinity', 'Infinity', '', '', '', false,
		'0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999', '0001-01-01', '', 0, '1970-01-01 00:00:00Z',
		'', '{}', 'null', '{}', '', '0', '00000000-0000-0000-0000-000000000000', '0', 0, 0, 0, '""',
		'2026-01-01 00:00:00-08', '', 0, '', 0, 'null')`,
	`INSERT INTO wides (id) VALUES (3)`, // every other column NULL
	`INSERT INTO wides (id, s, txt, t, arr, j) VALUES (4, 'üñí €', E'line\nbreak\t"quoted"', '2026-06-30 12:00:00.000001+14', '{}', '{"n": null}')`,
}

type mode struct {
	name string
	mode pgx.QueryExecMode
}

var modes = []mode{
	{"default", pgx.QueryExecModeCacheStatement},
	{"simple", pgx.QueryExecModeSimpleProtocol},
	{"exec", pgx.QueryExecModeExec},
}

// open returns a *bun.DB over pgx's stdlib on dsn in exec mode m (closed
// at the test's end), with the dialect of sh.
func open(t *testing.T, sh *shardtest.Shards, dsn string, m pgx.QueryExecMode, opts ...bun.DBOption) *bun.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = m
	db := bun.NewDB(stdlib.OpenDB(*cfg), sh.Dialect(), opts...)
	t.Cleanup(func() { db.Close() })
	return db
}

func setup(t *testing.T, ddl ...string) (*shardtest.Shards, string) {
	t.Helper()
	sh := pgtest.Shared().NewShards(t, "pgxscan", shardtest.WithPGX(), shardtest.WithNames("s"))
	db := sh.DB("s")
	ctx := context.Background()
	if _, err := db.NewCreateTable().Model((*Wide)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range append(wideRows, ddl...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return sh, sh.DSN("s")
}

// both runs f with the fast path off (Bun's scan) and on, and fails t
// unless they give the same result and error, and the fast path was taken
// (taken) or not.
func both[T any](t *testing.T, what string, taken bool, f func() (T, error)) {
	t.Helper()
	pgxscan.Disabled.Store(true)
	want, wantErr := f()
	pgxscan.Disabled.Store(false)
	n := pgxscan.Taken.Load()
	got, gotErr := f()
	if d := pgxscan.Taken.Load() - n; (d > 0) != taken {
		t.Errorf("%s: fast path taken %d times; want taken=%v", what, d, taken)
	}
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%s: error %v; Bun's scan gives %v", what, gotErr, wantErr)
	}
	if path := differ(reflect.ValueOf(got), reflect.ValueOf(want), "result"); path != "" {
		t.Fatalf("%s: the fast path and Bun's scan differ at %s\nfast: %+v\nBun:  %+v", what, path, got, want)
	}
}

// differ returns the path to the first difference between a and b (""
// if none): reflect.DeepEqual, except that NaN equals NaN and pointers
// are compared by what they point to, with nil and non-nil, and nil and
// empty slices and maps, told apart.
func differ(a, b reflect.Value, path string) string {
	if a.IsValid() != b.IsValid() {
		return path + " (one invalid)"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s (types %s and %s)", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
			return fmt.Sprintf("%s (%v and %v)", path, x, y)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if a.Int() != b.Int() {
			return fmt.Sprintf("%s (%d and %d)", path, a.Int(), b.Int())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if a.Uint() != b.Uint() {
			return fmt.Sprintf("%s (%d and %d)", path, a.Uint(), b.Uint())
		}
	case reflect.String:
		if a.String() != b.String() {
			return fmt.Sprintf("%s (%q and %q)", path, a.String(), b.String())
		}
	case reflect.Bool:
		if a.Bool() != b.Bool() {
			return path
		}
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + " (nil and not)"
			}
			return ""
		}
		return differ(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if d := differ(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
	case reflect.Slice, reflect.Array:
		if a.Kind() == reflect.Slice && a.IsNil() != b.IsNil() {
			return path + " (nil and empty)"
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s (lengths %d and %d)", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := differ(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return path + " (map sizes)"
		}
		for _, k := range a.MapKeys() {
			if d := differ(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); d != "" {
				return d
			}
		}
	default:
		if a.Pointer() != b.Pointer() {
			return path
		}
	}
	return ""
}

// TestSameAsBun compares the fast path with Bun's scan on the same rows,
// for every column kind, in each exec mode and time zone, as a slice of
// structs, of pointers, a get by primary key, into reused slices, and in
// the error cases.
func TestSameAsBun(t *testing.T) {
	sh, dsn := setup(t)
	ctx := context.Background()
	for _, m := range modes {
		for _, tz := range []string{"UTC", "Asia/Kolkata", "America/St_Johns"} {
			t.Run(m.name+"/"+tz, func(t *testing.T) {
				db := open(t, sh, dsn+"&timezone="+tz, m.mode)
				both(t, "[]Wide", true, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Order("id"))
					return out, err
				})
				both(t, "[]*Wide", true, func() ([]*Wide, error) {
					var out []*Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Order("id"))
					return out, err
				})
				for id := int64(1); id <= 5; id++ { // 5 is missing: sql.ErrNoRows
					both(t, fmt.Sprintf("get %d", id), true, func() (Wide, error) {
						w := Wide{ID: id, S: "left over", PtrInner: &PtrInner{PA: "old"}}
						err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&w).WherePK())
						return w, err
					})
				}
				// Bun reuses a slice's capacity, and the pointers in it.
				both(t, "reused []*Wide", true, func() ([]*Wide, error) {
					old := []*Wide{{ID: 99, S: "old", Txt: "kept"}, {ID: 98}, nil}
					out := old[:0]
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Column("id", "s").Order("id"))
					return append(out, old...), err
				})
				both(t, "reused []Wide", true, func() ([]Wide, error) {
					out := make([]Wide, 1, 8)
					out[0].Txt = "dropped"
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Column("id", "txt").Where("id > 1").Order("id"))
					return out[:cap(out)], err
				})
				both(t, "columns Bun ignores and model__column", true, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Column("id").
						ColumnExpr("1 AS _skip, '' AS \"\", s AS wide__txt").Order("id"))
					return out, err
				})
				both(t, "unknown column", true, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Column("id").ColumnExpr("2 AS bogus"))
					return out, err
				})
				both(t, "a column Bun cannot scan into its field", true, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Column("id").ColumnExpr("'x'::text AS f64").Order("id"))
					return out, err
				})
				both(t, "infinity into a time.Time", true, func() (Wide, error) {
					w := Wide{}
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&w).Column("id").ColumnExpr("'infinity'::timestamptz AS t"))
					return w, err
				})
				both(t, "infinity into a string", true, func() (Wide, error) {
					w := Wide{}
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&w).Column("id").ColumnExpr("'-infinity'::timestamptz AS ts"))
					return w, err
				})
				both(t, "a server error", true, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Where("1/(id-id) = 1"))
					return out, err
				})
				both(t, "a query Bun cannot build", false, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Err(errors.New("built wrong")))
					return out, err
				})
				both(t, "a comment from the context", true, func() ([]Wide, error) {
					var out []Wide
					err := pgxscan.Scan(bun.WithComment(ctx, "from ctx"), db, db.NewSelect().Model(&out).Order("id"))
					return out, err
				})
			})
		}
	}
}

// TestStats: the fast path counts queries and errors in Bun's DBStats as
// Bun does.
func TestStats(t *testing.T) {
	sh, dsn := setup(t)
	ctx := context.Background()
	for _, fast := range []bool{false, true} {
		pgxscan.Disabled.Store(!fast)
		db := open(t, sh, dsn, pgx.QueryExecModeCacheStatement)
		var out []Wide
		_ = pgxscan.Scan(ctx, db, db.NewSelect().Model(&out))
		w := Wide{ID: 77}
		_ = pgxscan.Scan(ctx, db, db.NewSelect().Model(&w).WherePK()) // sql.ErrNoRows: not an error
		_ = pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Where("nope"))
		if got, want := db.DBStats(), (bun.DBStats{Queries: 3, Errors: 1}); got != want {
			t.Errorf("fast=%v: DBStats %+v; want %+v", fast, got, want)
		}
	}
	pgxscan.Disabled.Store(false)
}

type hooked struct {
	bun.BaseModel `bun:"table:wides"`
	ID            int64 `bun:",pk"`
	S             string
	Seen          int `bun:"-"`
}

func (h *hooked) AfterScanRow(context.Context) error { h.Seen++; return nil }

type beforeScan struct {
	bun.BaseModel `bun:"table:wides"`
	ID            int64 `bun:",pk"`
	Seen          int   `bun:"-"`
}

func (h *beforeScan) BeforeScanRow(context.Context) error { h.Seen++; return nil }

type afterSelect struct {
	bun.BaseModel `bun:"table:wides"`
	ID            int64 `bun:",pk"`
}

var afterSelects int

func (*afterSelect) AfterSelect(context.Context, *bun.SelectQuery) error { afterSelects++; return nil }

type withRel struct {
	bun.BaseModel `bun:"table:wides"`
	ID            int64    `bun:",pk"`
	Self          *withRel `bun:"rel:belongs-to,join:id=id"`
}

type countHook struct{ n int }

func (h *countHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	h.n++
	return ctx
}
func (*countHook) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestFallback: what the fast path cannot do the same way (model hooks,
// query hooks, joins, transactions, other drivers, DB flags) runs through
// Bun's scan, and the hooks fire.
func TestFallback(t *testing.T) {
	sh, dsn := setup(t)
	ctx := context.Background()
	db := open(t, sh, dsn, pgx.QueryExecModeCacheStatement)
	notTaken := func(what string, f func() error) {
		t.Helper()
		n := pgxscan.Taken.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d := pgxscan.Taken.Load() - n; d != 0 {
			t.Errorf("%s: the fast path was taken %d times; want Bun's scan", what, d)
		}
	}
	notTaken("AfterScanRow", func() error {
		var out []hooked
		if err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Order("id")); err != nil {
			return err
		}
		if len(out) != 4 || out[0].Seen != 1 {
			return fmt.Errorf("AfterScanRow did not fire once per row: %+v", out)
		}
		return nil
	})
	notTaken("BeforeScanRow", func() error {
		h := beforeScan{ID: 1}
		if err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&h).WherePK()); err != nil {
			return err
		}
		if h.Seen != 1 {
			return fmt.Errorf("BeforeScanRow did not fire: %+v", h)
		}
		return nil
	})
	notTaken("AfterSelect", func() error {
		var out []afterSelect
		before := afterSelects
		if err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out)); err != nil {
			return err
		}
		if afterSelects != before+1 {
			return errors.New("AfterSelect did not fire")
		}
		return nil
	})
	notTaken("a joined relation", func() error {
		var out []withRel
		if err := pgxscan.Scan(ctx, db, db.NewSelect().Model(&out).Relation("Self").Order("with_rel.id")); err != nil {
			return err
		}
		if len(out) != 4 || out[0].Self == nil || out[0].Self.ID != 1 {
			return fmt.Errorf("the relation was not loaded: %+v", out)
		}
		return nil
	})
	hook := &countHook{}
	hdb := db.WithQueryHook(hook)
	notTaken("a query hook", func() error {
		var out []Wide
		if err := pgxscan.Scan(ctx, hdb, hdb.NewSelect().Model(&out)); err != nil {
			return err
		}
		if hook.n != 1 {
			return fmt.Errorf("the query hook saw %d queries; want 1", hook.n)
		}
		return nil
	})
	notTaken("a transaction", func() error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var out []Wide
			return pgxscan.Scan(ctx, tx, tx.NewSelect().Model(&out))
		})
	})
	notTaken("pgdriver", func() error {
		pd := pgtest.Shared().NewShards(t, "pgxscan_pgdriver", shardtest.WithNames("p")).DB("p")
		if _, err := pd.NewCreateTable().Model((*Wide)(nil)).Exec(ctx); err != nil {
			return err
		}
		var out []Wide
		return pgxscan.Scan(ctx, pd, pd.NewSelect().Model(&out))
	})
	fdb := open(t, sh, dsn, pgx.QueryExecModeCacheStatement, bun.WithDiscardUnknownColumns())
	notTaken("a DB flag", func() error {
		var out []Wide
		return pgxscan.Scan(ctx, fdb, fdb.NewSelect().Model(&out).Column("id").ColumnExpr("1 AS bogus"))
	})
	notTaken("not a table model", func() error {
		var ids []int64
		q := db.NewSelect().Model((*Wide)(nil)).Column("id")
		return q.Scan(ctx, &ids)
	})
}
