package chooser

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Jump routes by Lamping and Veach's jump consistent hash ("A Fast, Minimal
// Memory, Consistent Hash Algorithm", 2014) of the xxhash64 of one column's
// value, over an ordered list of shards. The value is encoded as for [Hash].
//
// Appending a shard to the list moves only about 1/n of the keys, all of them
// to the new shard; removing or reordering shards other than the last moves
// many keys, so treat the list as append-only. Unlike [Hash], Jump needs no
// bucket table, but it cannot move an individual key range to another shard.
//
// Jump is a [ShardChooser], an [IdentityChooser] (exact when the column is a
// primary-key column, else every shard), an [ExecuteChooser] (declared
// criteria on the column pick the shards, else every shard) and a
// [Splitter]. Routing a single key allocates nothing. Jump is immutable after
// [NewJump] and safe for concurrent use.
type Jump struct {
	col    byColumn
	shards []identity.ShardID
}

var (
	_ ShardChooser    = (*Jump)(nil)
	_ IdentityChooser = (*Jump)(nil)
	_ ExecuteChooser  = (*Jump)(nil)
	_ Splitter        = (*Jump)(nil)
)

// NewJump returns a Jump on column over shards, in this order. It fails if
// column is empty, there are no shards, or a shard is empty or repeated.
func NewJump(column string, shards ...identity.ShardID) (*Jump, error) {
	if column == "" {
		return nil, fmt.Errorf("chooser: NewJump: empty column name")
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("chooser: NewJump(%q): no shards", column)
	}
	index, targets, err := distinct(shards, "shard")
	if err != nil {
		return nil, fmt.Errorf("chooser: NewJump(%q): %w", column, err)
	}
	if len(targets) != len(shards) {
		for i, j := range index {
			if int(j) != i {
				return nil, fmt.Errorf("chooser: NewJump(%q): shard %q is listed twice", column, shards[i])
			}
		}
	}
	j := &Jump{shards: append([]identity.ShardID(nil), shards...)}
	j.col = byColumn{name: column, want: "an integer, a string or a []byte", targets: targets, pick: j.pick}
	return j, nil
}

// jumpHash is Lamping and Veach's algorithm, as published: it maps key to a
// bucket in [0, n), and growing n to n+1 moves a key only to bucket n. The
// float arithmetic is a single multiply of a quotient (no fused multiply-add
// is possible), so the result is the same on every platform.
func jumpHash(key uint64, n int) int {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

func (j *Jump) pick(table *schema.Table, column string, k key) (int, error) {
	sum, ok := sum64(k)
	if !ok {
		return 0, fmt.Errorf("chooser: %s: value %v cannot be hashed; want %s", at(table, column), k, j.col.want)
	}
	return jumpHash(sum, len(j.shards)), nil
}

// Column returns the column the chooser routes on.
func (j *Jump) Column() string { return j.col.name }

// Shards returns a copy of the shard list, in order.
func (j *Jump) Shards() []identity.ShardID {
	return append([]identity.ShardID(nil), j.shards...)
}

// ChooseShard returns the shard of obj's column value. It fails if the model
// has no such column or the value is NULL or cannot be hashed.
func (j *Jump) ChooseShard(_ context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return j.col.chooseShard(table, obj)
}

// ChooseIdentity returns the one shard owning the key when the column is a
// primary-key column of the model; otherwise the parent's shard for a relation
// load (key.LoadedFrom), else [AllShards].
func (j *Jump) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	return j.col.chooseIdentity(key)
}

// ChooseExecute returns the shards owning the values declared on the column,
// in the order of the values and without repeats; when the statement declares
// no criterion on the column, the parent's shard for a relation load
// (stmt.LoadedFrom), else [AllShards]; [None] for an empty IN list.
func (j *Jump) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	return j.col.chooseExecute(stmt)
}

// SplitValues groups values by the shard that owns them; it returns nil, nil
// for any other column.
func (j *Jump) SplitValues(_ context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	return j.col.splitValues(table, column, values)
}

// String returns "chooser.Jump(column, [s0 s1 …])".
func (j *Jump) String() string {
	return fmt.Sprintf("chooser.Jump(%s, %v)", j.col.name, j.shards)
}
