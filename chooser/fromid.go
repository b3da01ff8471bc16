package chooser

import (
	"context"
	"fmt"
	"math"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// FromID routes by the bucket encoded in a shard-encoded ID
// ([identity.Layout]): the row's shard is read from its ID, so a Get by ID
// goes to one shard with no fan-out and no lookup, and an IN list of IDs is
// split by shard without asking anyone.
//
// The bucket-to-shard assignment is fixed at construction, as for [Hash];
// moving a bucket means copying its rows and building a new FromID with the
// changed assignment. The IDs themselves never change.
//
// FromID is a [ShardChooser], an [IdentityChooser] (exact when the column is
// a primary-key column, else every shard), an [ExecuteChooser] (declared
// criteria on the column pick the shards, else every shard) and a
// [Splitter]. A zero ID (a new row whose ID the database will assign) and a
// bucket with no shard are errors wrapping [ErrNoOpinion], so that
//
//	place := chooser.First(fromID, roundRobin)
//
// places rows that carry an ID by their ID and the others in turn; the
// shard's database default then issues an ID in one of that shard's buckets
// (see [identity.Layout.FunctionSQL]). A negative ID, or a value that is not
// an integer, is an error. Routing a single key allocates nothing. FromID is
// immutable after [NewFromID] and safe for concurrent use.
type FromID struct {
	col     byColumn
	layout  identity.Layout
	assign  []identity.ShardID // bucket -> shard
	shard   []int32            // bucket -> index into col.targets
	errZero error              // built once: placing rows with no ID must not allocate
}

var (
	_ ShardChooser    = (*FromID)(nil)
	_ IdentityChooser = (*FromID)(nil)
	_ ExecuteChooser  = (*FromID)(nil)
	_ Splitter        = (*FromID)(nil)
)

// NewFromID returns a FromID on column, an integer column holding IDs in
// layout, where assign[b] is the shard of bucket b; the slice is copied and
// may be shorter than layout.Buckets() (IDs in the remaining buckets have no
// shard). [Spread] builds an even assignment:
//
//	l := identity.DefaultLayout()
//	byID, err := chooser.NewFromID("id", l, chooser.Spread(l.Buckets(), "s0", "s1"))
//
// It fails if column is empty, layout is invalid, or assign is empty, longer
// than layout.Buckets() or names the empty shard.
func NewFromID(column string, layout identity.Layout, assign []identity.ShardID) (*FromID, error) {
	if column == "" {
		return nil, fmt.Errorf("chooser: NewFromID: empty column name")
	}
	if err := layout.Validate(); err != nil {
		return nil, fmt.Errorf("chooser: NewFromID(%q): %w", column, err)
	}
	if len(assign) == 0 || len(assign) > layout.Buckets() {
		return nil, fmt.Errorf("chooser: NewFromID(%q): %d buckets assigned; layout %v has %d, and at least one must be assigned",
			column, len(assign), layout, layout.Buckets())
	}
	index, targets, err := distinct(assign, "bucket")
	if err != nil {
		return nil, fmt.Errorf("chooser: NewFromID(%q): %w", column, err)
	}
	c := &FromID{
		layout: layout,
		assign: append([]identity.ShardID(nil), assign...),
		shard:  index,
		errZero: fmt.Errorf("chooser: FromID(%s): the ID is zero, so it names no shard; "+
			"let another chooser place the row, e.g. First(fromID, roundRobin): %w", column, ErrNoOpinion),
	}
	c.col = byColumn{name: column, want: "an integer ID", targets: targets, pick: c.pick}
	return c, nil
}

func (c *FromID) pick(table *schema.Table, column string, k key) (int, error) {
	var id int64
	switch {
	case k.Kind == kindInt && int64(k.N) >= 0,
		k.Kind == kindUint && k.N <= math.MaxInt64:
		id = int64(k.N)
	default:
		return 0, fmt.Errorf("chooser: %s: value %v is not an ID of layout %v; want a non-negative integer", at(table, column), k, c.layout)
	}
	if id == 0 {
		return 0, c.errZero
	}
	b := c.layout.Bucket(id)
	if b >= len(c.assign) {
		return 0, fmt.Errorf("chooser: %s: ID %d is in bucket %d, which has no shard (buckets 0-%d are assigned): %w",
			at(table, column), id, b, len(c.assign)-1, ErrNoOpinion)
	}
	return int(c.shard[b]), nil
}

// Column returns the column the chooser routes on.
func (c *FromID) Column() string { return c.col.name }

// Layout returns the ID layout.
func (c *FromID) Layout() identity.Layout { return c.layout }

// Buckets returns a copy of the assignment: element b is the shard of bucket
// b. Change an element and pass the slice to [NewFromID] to move a bucket.
func (c *FromID) Buckets() []identity.ShardID {
	return append([]identity.ShardID(nil), c.assign...)
}

// ChooseShard returns the shard of the bucket of obj's ID. It fails if the
// model has no such column or the value is NULL, negative or not an integer;
// a zero ID or an unassigned bucket fails with an error wrapping
// [ErrNoOpinion].
func (c *FromID) ChooseShard(_ context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return c.col.chooseShard(table, obj)
}

// ChooseIdentity returns the one shard owning the ID when the column is a
// primary-key column of the model; otherwise the parent's shard for a relation
// load (key.LoadedFrom), else [AllShards].
func (c *FromID) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	return c.col.chooseIdentity(key)
}

// ChooseExecute returns the shards owning the IDs declared on the column, in
// the order of the IDs and without repeats; when the statement declares
// no criterion on the column, the parent's shard for a relation load
// (stmt.LoadedFrom), else [AllShards]; [None] for an empty IN list.
func (c *FromID) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	return c.col.chooseExecute(stmt)
}

// SplitValues groups IDs by the shard that owns them; it returns nil, nil
// for any other column.
func (c *FromID) SplitValues(_ context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	return c.col.splitValues(table, column, values)
}

// String returns "chooser.FromID(column, layout, N buckets)".
func (c *FromID) String() string {
	return fmt.Sprintf("chooser.FromID(%s, %v, %d buckets)", c.col.name, c.layout, len(c.assign))
}
