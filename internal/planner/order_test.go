package planner

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// orderRow has one column of each type the merge compares.
type orderRow struct {
	ID    int64     `bun:",pk"`
	N     *int64    // nullable integer
	U     uint32    `bun:"type:bigint"`
	F     float64   // double precision
	Dec   string    `bun:"type:numeric(20,4)"`
	Code  string    `bun:"type:char(4)"`
	Name  string    `bun:"type:varchar(20)"`
	UUID  string    `bun:"type:uuid"`
	OK    bool      `bun:"type:boolean"`
	At    time.Time `bun:"type:timestamptz"`
	Raw   []byte    `bun:"type:bytea"`
	Level int64     `bun:",nullzero,notnull,default:0"`
}

func orderTable() *schema.Table {
	return pgdialect.New().Tables().Get(reflect.TypeFor[orderRow]())
}

func TestParseOrder(t *testing.T) {
	table := orderTable()
	tests := []struct {
		spec                       string
		name                       string
		field                      bool
		desc, nullsFirst, byteOrdr bool
		sql                        string
	}{
		{"id", "id", true, false, false, false, "?TableAlias.? ASC NULLS LAST"},
		{"id desc", "id", true, true, true, false, "?TableAlias.? DESC NULLS FIRST"},
		{"  f   DESC   nulls   last ", "f", true, true, false, false, "?TableAlias.? DESC NULLS LAST"},
		{"n NULLS FIRST", "n", true, false, true, false, "?TableAlias.? ASC NULLS FIRST"},
		{`name COLLATE "C"`, "name", true, false, false, true, `?TableAlias.? COLLATE "C" ASC NULLS LAST`},
		{`code collate "POSIX" Desc`, "code", true, true, true, true, `?TableAlias.? COLLATE "C" DESC NULLS FIRST`},
		{"sum_f DESC", "sum_f", false, true, true, false, "?TableAlias.? DESC NULLS FIRST"}, // a grouped select's output
	}
	for _, tt := range tests {
		k, err := ParseOrder(table, tt.spec)
		if err != nil {
			t.Errorf("ParseOrder(%q) = %v; want a key", tt.spec, err)
			continue
		}
		if k.Name != tt.name || (k.Field != nil) != tt.field || k.Desc != tt.desc || k.NullsFirst != tt.nullsFirst ||
			k.ByteOrder != tt.byteOrdr || k.Expr != tt.spec || k.Raw {
			t.Errorf("ParseOrder(%q) = {Name %q, Field %v, Desc %t, NullsFirst %t, ByteOrder %t, Raw %t}; "+
				"want {%q, %t, %t, %t, %t, false}", tt.spec, k.Name, k.Field != nil, k.Desc, k.NullsFirst, k.ByteOrder,
				k.Raw, tt.name, tt.field, tt.desc, tt.nullsFirst, tt.byteOrdr)
		}
		sql, args := k.SQL()
		if sql != tt.sql || !slices.Equal(args, []any{schema.Ident(tt.name)}) {
			t.Errorf("ParseOrder(%q).SQL() = %q, %v; want %q, [%s]", tt.spec, sql, args, tt.sql, tt.name)
		}
	}
}

func TestParseOrderRefuses(t *testing.T) {
	table := orderTable()
	for _, spec := range []string{"", "   ", "id; DROP TABLE t; --", "id DESC, name", `"id"`, "lower(name)",
		"id ASC DESC", `name COLLATE "de_DE"`, "name COLLATE", "id NULLS", "id NULLS MIDDLE", "t.id", "1"} {
		k, err := ParseOrder(table, spec)
		var pe *Error
		if !errors.As(err, &pe) || pe.Fault != Invalid || !strings.Contains(pe.Msg, "OrderRow") {
			t.Errorf("ParseOrder(%q) = %+v, %v; want an Invalid *Error naming the model", spec, k, err)
		}
	}
}

func TestRawKeySQL(t *testing.T) {
	k := Key{Raw: true, Expr: "lower(?)", Args: []any{"X"}}
	if sql, args := k.SQL(); sql != "lower(?)" || !slices.Equal(args, []any{"X"}) {
		t.Errorf("raw Key.SQL() = %q, %v; want its own text and args", sql, args)
	}
	var pe *Error
	if err := Mergeable([]Key{k}); !errors.As(err, &pe) || pe.Fault != Unsupported {
		t.Errorf("Mergeable(raw) = %v; want Unsupported", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestCompareRows checks each column type's comparison, NULL placement and
// direction against the order PostgreSQL gives.
func TestCompareRows(t *testing.T) {
	table := orderTable()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		spec string
		a, b orderRow
		want int // sign of compare(a, b)
	}{
		{"id", orderRow{ID: 1}, orderRow{ID: 2}, -1},
		{"id DESC", orderRow{ID: 1}, orderRow{ID: 2}, 1},
		{"id", orderRow{ID: 7}, orderRow{ID: 7}, 0},
		{"n", orderRow{N: nil}, orderRow{N: ptr[int64](5)}, 1},       // ASC: NULLS LAST
		{"n DESC", orderRow{N: nil}, orderRow{N: ptr[int64](5)}, -1}, // DESC: NULLS FIRST
		{"n NULLS FIRST", orderRow{N: nil}, orderRow{N: ptr[int64](5)}, -1},
		{"n DESC NULLS LAST", orderRow{N: nil}, orderRow{N: ptr[int64](5)}, 1},
		{"n", orderRow{N: nil}, orderRow{N: nil}, 0},
		{"n", orderRow{N: ptr[int64](-3)}, orderRow{N: ptr[int64](0)}, -1},
		{"u", orderRow{U: math.MaxUint32}, orderRow{U: 1}, 1},
		{"f", orderRow{F: 0.1}, orderRow{F: 0.9}, -1},               // within 1.0: a truncating comparator says 0
		{"f", orderRow{F: math.NaN()}, orderRow{F: math.Inf(1)}, 1}, // NaN above every number
		{"f", orderRow{F: math.NaN()}, orderRow{F: math.NaN()}, 0},
		{"f", orderRow{F: math.Inf(-1)}, orderRow{F: -1e308}, -1},
		{"dec", orderRow{Dec: "9.5"}, orderRow{Dec: "10.5"}, -1}, // as numbers, not text
		{"dec", orderRow{Dec: "1"}, orderRow{Dec: "1.0000"}, 0},
		{"dec", orderRow{Dec: "NaN"}, orderRow{Dec: "1e30"}, 1},
		{"dec", orderRow{Dec: "-0.0001"}, orderRow{Dec: "0"}, -1},
		{`code COLLATE "C"`, orderRow{Code: "ab  "}, orderRow{Code: "ab"}, 0}, // trailing spaces ignored
		{`code COLLATE "C"`, orderRow{Code: "ab\t "}, orderRow{Code: "ab  "}, 1},
		{`name COLLATE "C"`, orderRow{Name: "B"}, orderRow{Name: "a"}, -1}, // bytes: upper case first
		{`name COLLATE "C" DESC`, orderRow{Name: "B"}, orderRow{Name: "a"}, 1},
		{"uuid", orderRow{UUID: "0a000000-0000-0000-0000-000000000000"}, orderRow{UUID: "a0000000-0000-0000-0000-000000000000"}, -1},
		{"ok", orderRow{OK: false}, orderRow{OK: true}, -1},
		{"at", orderRow{At: t0.Add(time.Nanosecond)}, orderRow{At: t0}, 1},
		{"at", orderRow{At: t0}, orderRow{At: t0.In(time.FixedZone("X", 3600))}, 0},
		{"raw", orderRow{Raw: []byte{1, 2}}, orderRow{Raw: []byte{1, 2, 0}}, -1},
		{"raw", orderRow{Raw: []byte{0xff}}, orderRow{Raw: []byte{0x01, 0xff}}, 1},
		{"level", orderRow{Level: 0}, orderRow{Level: 1}, -1}, // notnull: a zero is a value, not NULL
	}
	for _, tt := range tests {
		k, err := ParseOrder(table, tt.spec)
		if err != nil {
			t.Fatalf("ParseOrder(%q): %v", tt.spec, err)
		}
		if err := Mergeable([]Key{k}); err != nil {
			t.Fatalf("Mergeable(%q): %v", tt.spec, err)
		}
		a, b := reflect.ValueOf(tt.a), reflect.ValueOf(tt.b)
		if got := sign(CompareRows([]Key{k}, a, b)); got != tt.want {
			t.Errorf("ORDER BY %s: compare(%+v, %+v) = %d; want %d", tt.spec, tt.a, tt.b, got, tt.want)
		}
		if got := sign(CompareRows([]Key{k}, b, a)); got != -tt.want {
			t.Errorf("ORDER BY %s: compare(%+v, %+v) = %d; want %d", tt.spec, tt.b, tt.a, got, -tt.want)
		}
	}
}

// TestCompareRowsKeysInOrder: the first key that tells rows apart decides;
// later keys break ties only.
func TestCompareRowsKeysInOrder(t *testing.T) {
	table := orderTable()
	var keys []Key
	for _, s := range []string{"f DESC", "id"} {
		k, err := ParseOrder(table, s)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	rows := []orderRow{{ID: 3, F: 1.5}, {ID: 1, F: 1.5}, {ID: 2, F: 2.25}, {ID: 4, F: 1.75}}
	slices.SortFunc(rows, func(a, b orderRow) int { return CompareRows(keys, reflect.ValueOf(a), reflect.ValueOf(b)) })
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	if want := []int64{2, 4, 1, 3}; !slices.Equal(ids, want) {
		t.Errorf("ORDER BY f DESC, id = %v; want %v", ids, want)
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

func TestSQLClass(t *testing.T) {
	for sql, want := range map[string]Type{
		"numeric(10,2)": TypeNumeric, "DECIMAL": TypeNumeric, "bigint": TypeInt, "serial": TypeInt,
		"double precision": TypeFloat, "real": TypeFloat, "character varying(20)": TypeText, "text": TypeText,
		"char(3)": TypeBpchar, "character(3)": TypeBpchar, "uuid": TypeUUID, "boolean": TypeBool,
		"timestamp(3) with time zone": TypeTime, "date": TypeTime, "bytea": TypeBytes,
		"jsonb": TypeOther, "varchar[]": TypeOther, "citext": TypeOther, "money": TypeOther, "": TypeOther,
	} {
		if got := SQLClass(sql); got != want {
			t.Errorf("SQLClass(%q) = %d; want %d", sql, got, want)
		}
	}
}
