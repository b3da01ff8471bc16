package chooser

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Hash routes by a hash of one column's value through a fixed number of
// virtual buckets: a key's bucket is
//
//	xxhash64(encoding(value)) mod Buckets
//
// and each bucket is assigned to a shard. The encoding is canonical and will
// never change: integers of any width and signedness, and named types of
// them, hash as the value's 8-byte little-endian two's-complement form (so
// int32(7) and int64(7) share a bucket); strings and []byte hash as their
// bytes. Other types (floats, structs) are an error naming the value.
//
// The bucket count is fixed for the life of the data; shards are not.
// Moving a bucket to another shard means building a new Hash from
// [Hash.Buckets] with one entry changed, once its rows have been copied;
// [Hash.Bucket] tells an application which bucket a key is in, to plan and
// run such moves. Choose many more buckets than shards (1024 or 4096 for a
// handful of shards) so that load can be rebalanced a bucket at a time.
//
// Hash is a [ShardChooser], an [IdentityChooser] (exact when the column is a
// primary-key column, else every shard), an [ExecuteChooser] (declared
// criteria on the column pick the shards, else every shard) and a
// [Splitter]. Routing a single key allocates nothing. Hash is immutable
// after [NewHash] and safe for concurrent use.
type Hash struct {
	col    byColumn
	assign []identity.ShardID // bucket -> shard
	shard  []int32            // bucket -> index into col.targets
}

var (
	_ ShardChooser    = (*Hash)(nil)
	_ IdentityChooser = (*Hash)(nil)
	_ ExecuteChooser  = (*Hash)(nil)
	_ Splitter        = (*Hash)(nil)
)

// NewHash returns a Hash on column with len(assign) buckets, where assign[b]
// is the shard of bucket b; the slice is copied. It fails if column is empty,
// assign is empty or names the empty shard. [Spread] builds an even
// assignment:
//
//	h, err := chooser.NewHash("user_id", chooser.Spread(1024, "s0", "s1", "s2"))
func NewHash(column string, assign []identity.ShardID) (*Hash, error) {
	if column == "" {
		return nil, fmt.Errorf("chooser: NewHash: empty column name")
	}
	if len(assign) == 0 {
		return nil, fmt.Errorf("chooser: NewHash(%q): no buckets; pass one shard per bucket, e.g. chooser.Spread(1024, shards...)", column)
	}
	index, targets, err := distinct(assign, "bucket")
	if err != nil {
		return nil, fmt.Errorf("chooser: NewHash(%q): %w", column, err)
	}
	h := &Hash{
		assign: append([]identity.ShardID(nil), assign...),
		shard:  index,
	}
	h.col = byColumn{name: column, want: "an integer, a string or a []byte", targets: targets, pick: h.pick}
	return h, nil
}

// Spread returns an assignment of buckets to shards in contiguous, nearly
// equal runs: with 10 buckets over s0, s1, s2, buckets 0-3 go to s0, 4-6 to
// s1 and 7-9 to s2. It returns nil if buckets < 1 or there are no shards,
// which the constructors taking the result reject.
func Spread(buckets int, shards ...identity.ShardID) []identity.ShardID {
	if buckets < 1 || len(shards) == 0 {
		return nil
	}
	assign := make([]identity.ShardID, buckets)
	for b := range assign {
		assign[b] = shards[b*len(shards)/buckets]
	}
	return assign
}

func (h *Hash) pick(table *schema.Table, column string, k key) (int, error) {
	b, err := h.bucket(table, column, k)
	if err != nil {
		return 0, err
	}
	return int(h.shard[b]), nil
}

func (h *Hash) bucket(table *schema.Table, column string, k key) (int, error) {
	sum, ok := sum64(k)
	if !ok {
		return 0, fmt.Errorf("chooser: %s: value %v cannot be hashed; want %s", at(table, column), k, h.col.want)
	}
	return int(sum % uint64(len(h.assign))), nil
}

// Column returns the column the chooser routes on.
func (h *Hash) Column() string { return h.col.name }

// Bucket returns the bucket of value, in [0, len(Buckets())). It fails for a
// value that cannot be hashed (nil, a float, a struct).
func (h *Hash) Bucket(value any) (int, error) {
	k, err := h.col.valueKey(nil, value)
	if err != nil {
		return 0, err
	}
	return h.bucket(nil, h.col.name, k)
}

// Buckets returns a copy of the assignment: element b is the shard of bucket
// b. Change an element and pass the slice to [NewHash] to move a bucket.
func (h *Hash) Buckets() []identity.ShardID {
	return append([]identity.ShardID(nil), h.assign...)
}

// ChooseShard returns the shard of the bucket of obj's column value. It fails
// if the model has no such column or the value is NULL or cannot be hashed.
func (h *Hash) ChooseShard(_ context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return h.col.chooseShard(table, obj)
}

// ChooseIdentity returns the one shard owning the key when the column is a
// primary-key column of the model; otherwise the parent's shard for a relation
// load (key.LoadedFrom), else [AllShards].
func (h *Hash) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	return h.col.chooseIdentity(key)
}

// ChooseExecute returns the shards owning the values declared on the column,
// in the order of the values and without repeats; when the statement declares
// no criterion on the column, the parent's shard for a relation load
// (stmt.LoadedFrom), else [AllShards]; [None] for an empty IN list.
func (h *Hash) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	return h.col.chooseExecute(stmt)
}

// SplitValues groups values by the shard that owns them; it returns nil, nil
// for any other column.
func (h *Hash) SplitValues(_ context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	return h.col.splitValues(table, column, values)
}

// String returns "chooser.Hash(column, N buckets)".
func (h *Hash) String() string {
	return fmt.Sprintf("chooser.Hash(%s, %d buckets)", h.col.name, len(h.assign))
}
