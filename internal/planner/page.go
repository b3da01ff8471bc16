package planner

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun/schema"
)

// PageKeys checks an order of the model with table t for keyset pages and
// completes it with the primary key, so that the order is total. An empty
// order, a column that cannot be merged ([Mergeable]) or may be NULL (a
// pointer or nullzero field), or a key whose Go type a cursor cannot hold,
// fails with an *Error naming it.
func PageKeys(t *schema.Table, order []Key) ([]Key, error) {
	if len(order) == 0 {
		return nil, invalid("ScanPage needs an Order")
	}
	if err := Mergeable(order); err != nil {
		return nil, err
	}
	keys := append([]Key(nil), order...)
	for _, k := range keys {
		if k.Field.IndirectType != k.Field.StructField.Type || k.Field.NullZero {
			return nil, unsupported("ScanPage: order column %s may be NULL (pointer or nullzero field); "+
				"keyset pages need non-NULL order columns", k.Field.Name)
		}
	}
	for _, pk := range t.PKs {
		present := false
		for _, k := range keys {
			present = present || k.Field == pk
		}
		if !present {
			keys = append(keys, Key{Field: pk, Expr: pk.Name, Name: pk.Name})
		}
	}
	for _, k := range keys {
		// Why: a value the cursor cannot hold would come back as NULL, and
		// "after NULL" matches no row: every later page would be lost.
		if t, _ := TypeOf(k.Field); kindOf(k.Field.IndirectType) == kindOther && t != TypeBytes {
			return nil, unsupported("ScanPage: key column %s.%s of Go type %s cannot be written into a cursor; "+
				"page by columns of integer, float, string, bool, time or []byte fields",
				k.Field.Table.TypeName, k.Field.Name, k.Field.IndirectType)
		}
	}
	return keys, nil
}

// After renders "the row comes after vals in the order of keys" as a Bun
// WHERE condition and its arguments: a row comparison when every key has
// the same direction, else the expanded (k1 > v1) OR (k1 = v1 AND k2 > v2)
// ... form. vals holds one value per key, as [DecodeCursor] returns them.
func After(keys []Key, vals []any) (string, []any) {
	col := func(k Key) (string, []any) {
		if k.ByteOrder {
			return `?TableAlias.? COLLATE "C"`, []any{schema.Ident(k.Field.Name)}
		}
		return "?TableAlias.?", []any{schema.Ident(k.Field.Name)}
	}
	op := func(k Key) string {
		if k.Desc {
			return "<"
		}
		return ">"
	}
	same := true
	for _, k := range keys[1:] {
		same = same && k.Desc == keys[0].Desc
	}
	var b strings.Builder
	var args []any
	if same {
		b.WriteString("(")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			s, a := col(k)
			b.WriteString(s)
			args = append(args, a...)
		}
		b.WriteString(") " + op(keys[0]) + " (")
		for i := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?")
			args = append(args, vals[i])
		}
		b.WriteString(")")
		return b.String(), args
	}
	b.WriteString("(")
	for i := range keys {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(")
		for j := 0; j <= i; j++ {
			if j > 0 {
				b.WriteString(" AND ")
			}
			s, a := col(keys[j])
			o := "="
			if j == i {
				o = op(keys[j])
			}
			b.WriteString(s + " " + o + " ?")
			args = append(args, a...)
			args = append(args, vals[j])
		}
		b.WriteString(")")
	}
	b.WriteString(")")
	return b.String(), args
}

type cursorData struct {
	Query string   `json:"q"`
	Vals  []string `json:"v"`
}

// fingerprint names the model and order a cursor belongs to.
func fingerprint(t *schema.Table, keys []Key) string {
	var b strings.Builder
	b.WriteString(t.TypeName)
	for _, k := range keys {
		fmt.Fprintf(&b, "|%s:%t:%t", k.Field.Name, k.Desc, k.ByteOrder)
	}
	return b.String()
}

// EncodeCursor returns the opaque cursor of the page after row (a model
// struct of table t, not a pointer) in the order of keys ([PageKeys]): the
// row's key values and a fingerprint of the model and order.
func EncodeCursor(t *schema.Table, keys []Key, row reflect.Value) string {
	c := cursorData{Query: fingerprint(t, keys)}
	for _, k := range keys {
		v := k.Field.Value(row)
		var s string
		switch kindOf(v.Type()) {
		case kindInt:
			s = strconv.FormatInt(v.Int(), 10)
		case kindUint:
			s = strconv.FormatUint(v.Uint(), 10)
		case kindFloat:
			s = strconv.FormatFloat(v.Float(), 'g', -1, 64)
		case kindText:
			s = v.String()
		case kindBool:
			s = strconv.FormatBool(v.Bool())
		case kindTime:
			s = v.Interface().(time.Time).Format(time.RFC3339Nano)
		default: // bytea in []byte, the only other type Mergeable and PageKeys accept
			s = base64.StdEncoding.EncodeToString(v.Bytes())
		}
		c.Vals = append(c.Vals, s)
	}
	b, _ := json.Marshal(c) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor returns the key values of a cursor that [EncodeCursor] made
// for the same model and order, one per key, in the keys' Go types. A
// cursor it did not make, one of another model or order, or one holding a
// value that does not parse as its key's type fails with an *Error of
// Fault Invalid.
func DecodeCursor(t *schema.Table, keys []Key, cursor string) ([]any, error) {
	bad := func(why string) error {
		return invalid("ScanPage: the cursor %s", why)
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, bad("is not one ScanPage made")
	}
	var c cursorData
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Vals) != len(keys) {
		return nil, bad("is not one ScanPage made")
	}
	if c.Query != fingerprint(t, keys) {
		return nil, bad("belongs to another model or order")
	}
	vals := make([]any, len(keys))
	for i, k := range keys {
		s := c.Vals[i]
		var v any
		switch kindOf(k.Field.IndirectType) {
		case kindInt:
			v, err = strconv.ParseInt(s, 10, 64)
		case kindUint:
			v, err = strconv.ParseUint(s, 10, 64)
		case kindFloat:
			v, err = strconv.ParseFloat(s, 64)
		case kindText:
			v = s
		case kindBool:
			v, err = strconv.ParseBool(s)
		case kindTime:
			v, err = time.Parse(time.RFC3339Nano, s)
		default: // bytea in []byte
			v, err = base64.StdEncoding.DecodeString(s)
		}
		if err != nil {
			return nil, bad("holds a bad value for " + k.Field.Name)
		}
		vals[i] = v
	}
	return vals, nil
}
