package session

import "context"

// ScanAndCount runs the select's Scan (into the model, or dest) and its
// Count, as bun.SelectQuery.ScanAndCount does: the rows are the merged
// page (the global Order, Limit and Offset), the count is the global
// number of rows the select matches, ignoring Limit and Offset, summed
// over the same shards. The two run one after the other (in a unit, on
// its transactions, which run one statement at a time, as Bun does in a
// transaction), each fanned out in parallel. An error of Scan is
// returned with a count of 0 and no Count sent; under [AllowPartial] a
// *[PartialError] of either is returned with what the answering shards
// gave.
func (q *SelectQuery) ScanAndCount(ctx context.Context, dest ...any) (int, error) {
	serr := q.Scan(ctx, dest...)
	if serr != nil && !isPartial(serr) {
		return 0, serr
	}
	n, cerr := q.Count(ctx)
	if cerr != nil {
		return n, cerr
	}
	return n, serr
}
