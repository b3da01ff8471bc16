package chooser

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// RoundRobin places new objects on its shards in turn, for rows that have no
// natural key to route on (their ID is assigned after placement, for example
// by the shard's database default; see [FromID]). It is only a
// [ShardChooser]: a row placed by turn cannot be found again by its key, so
// pair it with a chooser that can, such as First(fromID, roundRobin).
//
// The turn is an atomic counter: RoundRobin is safe for concurrent use and
// never blocks, and under concurrency each shard still receives an equal
// share of calls (in no guaranteed order).
type RoundRobin struct {
	shards []identity.ShardID
	next   atomic.Uint64
}

var _ ShardChooser = (*RoundRobin)(nil)

// NewRoundRobin returns a RoundRobin over shards, starting with the first.
// It fails if there are no shards or a shard is empty or repeated.
func NewRoundRobin(shards ...identity.ShardID) (*RoundRobin, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("chooser: NewRoundRobin: no shards")
	}
	seen := make(map[identity.ShardID]bool, len(shards))
	for i, id := range shards {
		switch {
		case id == "":
			return nil, fmt.Errorf("chooser: NewRoundRobin: shard %d is the empty shard ID", i)
		case seen[id]:
			return nil, fmt.Errorf("chooser: NewRoundRobin: shard %q is listed twice", id)
		}
		seen[id] = true
	}
	return &RoundRobin{shards: append([]identity.ShardID(nil), shards...)}, nil
}

// ChooseShard returns the next shard in turn. It never fails and ignores
// table and obj. Asked to check a pinned write (see [WithPin]) it abstains
// with an error wrapping [ErrNoOpinion] and uses no turn: a turn is no
// reason to refuse a pin.
func (r *RoundRobin) ChooseShard(ctx context.Context, _ *schema.Table, _ any) (identity.ShardID, error) {
	if id, ok := PinOf(ctx); ok {
		return "", fmt.Errorf("chooser: %v places by turn, not by the object, so it leaves the object to the pin %s: %w", r, id, ErrNoOpinion)
	}
	n := r.next.Add(1) - 1
	return r.shards[n%uint64(len(r.shards))], nil
}

// String returns "chooser.RoundRobin([s0 s1 …])".
func (r *RoundRobin) String() string {
	return fmt.Sprintf("chooser.RoundRobin(%v)", r.shards)
}
