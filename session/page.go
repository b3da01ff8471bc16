package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// ScanPage reads one page of keyset pagination into the slice model: the
// rows that follow cursor in the statement's order, at most Limit of them,
// and returns the cursor of the next page ("" when this page is the last).
// Pass "" for the first page.
//
// Each shard is asked only for the Limit rows after the cursor (a WHERE on
// the order keys, not an OFFSET), so any page costs about Limit x shards
// rows however deep it is. Offset is the slow way: page n costs n x Limit
// rows from every shard.
//
// The order must name plain, non-NULL columns (ASC or DESC; text with
// COLLATE "C"); the primary key is appended when absent, so that the order
// is total. A cursor is opaque, and only valid for the statement that made
// it: another model or order fails with ErrInvalidArgument.
func (q *SelectQuery) ScanPage(ctx context.Context, cursor string) (next string, err error) {
	if q.err != nil {
		return "", q.err
	}
	if q.mi == nil || (q.kind != destSlice && q.kind != destSlicePtr) {
		return "", fmt.Errorf("%w: ScanPage needs Model(&objs) with a slice", ErrInvalidArgument)
	}
	if q.limit <= 0 || q.offset != 0 || q.aggregating || q.grouped {
		return "", fmt.Errorf("%w: ScanPage needs Limit(page size) and no Offset, GroupBy or Group", ErrInvalidArgument)
	}
	keys, err := q.pageKeys()
	if err != nil {
		return "", err
	}
	pq := *q
	pq.order = keys
	pq.ops = append([]func(*bun.SelectQuery) *bun.SelectQuery(nil), q.ops...)
	if cursor != "" {
		vals, err := decodeCursor(q, keys, cursor)
		if err != nil {
			return "", err
		}
		cond, args := afterCond(keys, vals)
		pq.ops = append(pq.ops, func(b *bun.SelectQuery) *bun.SelectQuery { return b.Where(cond, args...) })
	}
	if err := pq.Scan(ctx); err != nil {
		return "", err
	}
	out := reflect.ValueOf(q.model).Elem()
	if out.Len() < q.limit {
		return "", nil
	}
	return encodeCursor(q, keys, reflect.Indirect(out.Index(out.Len()-1))), nil
}

// pageKeys checks the order for keyset use and completes it with the
// primary key.
func (q *SelectQuery) pageKeys() ([]orderKey, error) {
	if len(q.order) == 0 {
		return nil, fmt.Errorf("%w: ScanPage needs an Order", ErrInvalidArgument)
	}
	if err := mergeable(q.order); err != nil {
		return nil, err
	}
	keys := append([]orderKey(nil), q.order...)
	for _, k := range keys {
		if k.field.IndirectType != k.field.StructField.Type || k.field.NullZero {
			return nil, fmt.Errorf("%w: ScanPage: order column %s may be NULL (pointer or nullzero field); "+
				"keyset pages need non-NULL order columns", ErrUnsupported, k.field.Name)
		}
	}
	for _, pk := range q.mi.table.PKs {
		present := false
		for _, k := range keys {
			present = present || k.field == pk
		}
		if !present {
			keys = append(keys, orderKey{field: pk, expr: pk.Name})
		}
	}
	return keys, nil
}

// afterCond renders "the row comes after vals in the order of keys": a row
// comparison when every key has the same direction, else the expanded
// (k1 > v1) OR (k1 = v1 AND k2 > v2) ... form.
func afterCond(keys []orderKey, vals []any) (string, []any) {
	col := func(k orderKey) (string, []any) {
		if k.byteOrder {
			return `?TableAlias.? COLLATE "C"`, []any{bun.Ident(k.field.Name)}
		}
		return "?TableAlias.?", []any{bun.Ident(k.field.Name)}
	}
	op := func(k orderKey) string {
		if k.desc {
			return "<"
		}
		return ">"
	}
	same := true
	for _, k := range keys[1:] {
		same = same && k.desc == keys[0].desc
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

func fingerprint(q *SelectQuery, keys []orderKey) string {
	var b strings.Builder
	b.WriteString(q.mi.table.TypeName)
	for _, k := range keys {
		fmt.Fprintf(&b, "|%s:%t:%t", k.field.Name, k.desc, k.byteOrder)
	}
	return b.String()
}

func encodeCursor(q *SelectQuery, keys []orderKey, row reflect.Value) string {
	c := cursorData{Query: fingerprint(q, keys)}
	for _, k := range keys {
		v := k.field.Value(row)
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
		}
		c.Vals = append(c.Vals, s)
	}
	b, _ := json.Marshal(c) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(q *SelectQuery, keys []orderKey, cursor string) ([]any, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: ScanPage: the cursor %s", ErrInvalidArgument, why)
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, bad("is not one ScanPage made")
	}
	var c cursorData
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Vals) != len(keys) {
		return nil, bad("is not one ScanPage made")
	}
	if c.Query != fingerprint(q, keys) {
		return nil, bad("belongs to another model or order")
	}
	vals := make([]any, len(keys))
	for i, k := range keys {
		s := c.Vals[i]
		var v any
		switch kindOf(k.field.IndirectType) {
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
		}
		if err != nil {
			return nil, bad("holds a bad value for " + k.field.Name)
		}
		vals[i] = v
	}
	return vals, nil
}
