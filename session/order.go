package session

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/planner"
)

// The planning half of a select (ORDER BY terms and their comparators, the
// grouped-aggregate plan and merge, keyset cursors) is pure code in
// internal/plan; this file holds what joins it to the session's queries.

// fromPlan turns a planning error into one of the session's: an
// *planner.Error of Fault Invalid matches ErrInvalidArgument, of Fault
// Unsupported ErrUnsupported, with the plan's message after the sentinel's
// text. Any other error is returned as it is.
func fromPlan(err error) error {
	var pe *planner.Error
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Fault {
	case planner.Invalid:
		return fmt.Errorf("%w: %s", ErrInvalidArgument, pe.Msg)
	case planner.Unsupported:
		return fmt.Errorf("%w: %s", ErrUnsupported, pe.Msg)
	}
	return fmt.Errorf("session: %w", err)
}

// mergeable reports why keys cannot be merged across shards, or nil.
func mergeable(keys []planner.Key) error { return fromPlan(planner.Mergeable(keys)) }

// applyOrder adds an ORDER BY term to a per-shard query.
func applyOrder(b *bun.SelectQuery, k planner.Key) *bun.SelectQuery {
	expr, args := k.SQL()
	return b.OrderExpr(expr, args...)
}

// rowOrder is the merge's comparator of two model structs (not pointers).
func rowOrder(keys []planner.Key) func(a, b reflect.Value) int {
	return func(a, b reflect.Value) int { return planner.CompareRows(keys, a, b) }
}
