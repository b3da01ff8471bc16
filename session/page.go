package session

import (
	"context"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/planner"
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
	keys, err := planner.PageKeys(q.mi.table, q.order)
	if err != nil {
		return "", fromPlan(err)
	}
	pq := *q
	pq.order = keys
	pq.ops = append([]func(*bun.SelectQuery) *bun.SelectQuery(nil), q.ops...)
	if cursor != "" {
		vals, err := planner.DecodeCursor(q.mi.table, keys, cursor)
		if err != nil {
			return "", fromPlan(err)
		}
		cond, args := planner.After(keys, vals)
		pq.ops = append(pq.ops, func(b *bun.SelectQuery) *bun.SelectQuery { return b.Where(cond, args...) })
	}
	if err := pq.Scan(ctx); err != nil {
		return "", err
	}
	out := reflect.ValueOf(q.model).Elem()
	if out.Len() < q.limit {
		return "", nil
	}
	return planner.EncodeCursor(q.mi.table, keys, reflect.Indirect(out.Index(out.Len()-1))), nil
}
