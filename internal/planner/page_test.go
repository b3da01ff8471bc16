package planner

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// pageRow has a key column of each type a cursor holds.
type pageRow struct {
	ID   int64 `bun:",pk"`
	U    uint64
	F    float64
	Name string `bun:"type:varchar(20)"`
	OK   bool   `bun:"type:boolean"`
	At   time.Time
	Raw  []byte `bun:"type:bytea"`
	P    *int64
	Z    int64 `bun:",nullzero"`
}

func pageKeys(t *testing.T, table *schema.Table, specs ...string) []Key {
	t.Helper()
	var order []Key
	for _, s := range specs {
		k, err := ParseOrder(table, s)
		if err != nil {
			t.Fatalf("ParseOrder(%q): %v", s, err)
		}
		order = append(order, k)
	}
	keys, err := PageKeys(table, order)
	if err != nil {
		t.Fatalf("PageKeys(%v): %v", specs, err)
	}
	return keys
}

// TestCursorRoundTrip: a cursor gives back the last row's key values, in
// the keys' Go types, and the primary key completes the order.
func TestCursorRoundTrip(t *testing.T) {
	table := pgdialect.New().Tables().Get(reflect.TypeFor[pageRow]())
	at := time.Date(2026, 12, 1, 17, 4, 5, 123456789, time.FixedZone("X", -3*3600))
	row := pageRow{ID: 42, U: 1<<64 - 1, F: 0.1, Name: "a\"b,c", OK: true, At: at, Raw: []byte{0, 0xff, '"'}}
	keys := pageKeys(t, table, "u DESC", "f", `name COLLATE "C"`, "ok", "at", "raw")
	if n := len(keys); n != 7 || keys[6].Field.Name != "id" {
		t.Fatalf("PageKeys = %d keys, last %v; want the 6 terms and then id", n, keys[n-1].Field.Name)
	}
	cur := EncodeCursor(table, keys, reflect.ValueOf(row))
	vals, err := DecodeCursor(table, keys, cur)
	if err != nil {
		t.Fatalf("DecodeCursor(EncodeCursor(row)) = %v", err)
	}
	want := []any{uint64(1<<64 - 1), 0.1, "a\"b,c", true, at, []byte{0, 0xff, '"'}, int64(42)}
	if len(vals) != len(want) {
		t.Fatalf("DecodeCursor = %v; want %v", vals, want)
	}
	for i := range want {
		eq := reflect.DeepEqual(vals[i], want[i])
		if tm, ok := want[i].(time.Time); ok {
			eq = tm.Equal(vals[i].(time.Time))
		}
		if !eq {
			t.Errorf("DecodeCursor value %d (%s) = %#v; want %#v", i, keys[i].Field.Name, vals[i], want[i])
		}
	}
}

func TestCursorRefused(t *testing.T) {
	table := pgdialect.New().Tables().Get(reflect.TypeFor[pageRow]())
	keys := pageKeys(t, table, "f")
	cur := EncodeCursor(table, keys, reflect.ValueOf(pageRow{ID: 1, F: 2}))
	for name, c := range map[string]struct {
		keys   []Key
		cursor string
		want   string
	}{
		"garbage":       {keys, "not a cursor!", "is not one ScanPage made"},
		"not json":      {keys, "bm90IGpzb24", "is not one ScanPage made"},
		"other order":   {pageKeys(t, table, "f DESC"), cur, "another model or order"},
		"other columns": {pageKeys(t, table, "u"), cur, "another model or order"},
		"bad value":     {keys, "eyJxIjoiUGFnZVJvd3xmOmZhbHNlOmZhbHNlfGlkOmZhbHNlOmZhbHNlIiwidiI6WyJ4IiwiMSJdfQ", "bad value for f"},
	} {
		vals, err := DecodeCursor(table, c.keys, c.cursor)
		var pe *Error
		if !errors.As(err, &pe) || pe.Fault != Invalid || !strings.Contains(pe.Msg, c.want) {
			t.Errorf("%s: DecodeCursor = %v, %v; want Invalid %q", name, vals, err, c.want)
		}
	}
}

func TestPageKeysRefuses(t *testing.T) {
	table := pgdialect.New().Tables().Get(reflect.TypeFor[pageRow]())
	for spec, want := range map[string]string{"p": "may be NULL", "z": "pointer", "name": "COLLATE"} {
		k, err := ParseOrder(table, spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = PageKeys(table, []Key{k})
		var pe *Error
		if !errors.As(err, &pe) || pe.Fault != Unsupported || !strings.Contains(pe.Msg, want) {
			t.Errorf("PageKeys(%s) = %v; want Unsupported %q", spec, err, want)
		}
	}
	var pe *Error
	if _, err := PageKeys(table, nil); !errors.As(err, &pe) || pe.Fault != Invalid {
		t.Errorf("PageKeys(no order) = %v; want Invalid", err)
	}
}

// TestAfter: the condition that selects the rows after a cursor, in both
// forms.
func TestAfter(t *testing.T) {
	table := pgdialect.New().Tables().Get(reflect.TypeFor[pageRow]())
	for _, tt := range []struct {
		specs []string
		vals  []any
		sql   string
		args  []any
	}{
		{[]string{"f"}, []any{1.5, int64(7)}, "(?TableAlias.?, ?TableAlias.?) > (?, ?)",
			[]any{schema.Ident("f"), schema.Ident("id"), 1.5, int64(7)}},
		{[]string{"f DESC", "id DESC"}, []any{1.5, int64(7)}, "(?TableAlias.?, ?TableAlias.?) < (?, ?)",
			[]any{schema.Ident("f"), schema.Ident("id"), 1.5, int64(7)}},
		{[]string{`name COLLATE "C" DESC`, "id"}, []any{"x", int64(7)},
			`((?TableAlias.? COLLATE "C" < ?) OR (?TableAlias.? COLLATE "C" = ? AND ?TableAlias.? > ?))`,
			[]any{schema.Ident("name"), "x", schema.Ident("name"), "x", schema.Ident("id"), int64(7)}},
	} {
		keys := pageKeys(t, table, tt.specs...)
		sql, args := After(keys, tt.vals)
		if sql != tt.sql || !slices.Equal(args, tt.args) {
			t.Errorf("After(%v) = %q %v; want %q %v", tt.specs, sql, args, tt.sql, tt.args)
		}
	}
}

// TestPageKeysRefusesKeyTheCursorCannotHold: a [16]byte primary key (a
// uuid type) was written into the cursor as "" and read back as NULL, so
// "after NULL" matched no row and every later page was empty.
func TestPageKeysRefusesKeyTheCursorCannotHold(t *testing.T) {
	type uuidRow struct {
		ID   [16]byte `bun:",pk,type:uuid"`
		Seen int64
	}
	table := pgdialect.New().Tables().Get(reflect.TypeFor[uuidRow]())
	k, err := ParseOrder(table, "seen")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := PageKeys(table, []Key{k})
	var pe *Error
	if !errors.As(err, &pe) || pe.Fault != Unsupported || !strings.Contains(pe.Msg, "id") {
		t.Errorf("PageKeys(seen, then a [16]byte id) = %v, %v; want Unsupported naming the id column", len(keys), err)
	}
}
