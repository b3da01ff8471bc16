package session

import (
	"context"
	"database/sql"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/loader"
)

// Folded relation loads: under WithFolding, the loader's statements for
// shards of one fold group (see fold.go) go as one tagged UNION ALL per
// group, each branch the shard's own relation select rendered on its own
// *bun.DB with its parents' keys; the loader splits the rows back by tag.
// See docs/folding.md.

var _ loader.Folder = loadConns{}

// Fold groups a relation load's statements as fan-out reads are grouped
// (foldGroups): nil, one statement per shard, without WithFolding, in a
// unit of work, and for shards with replicas or given as a transaction.
func (c loadConns) Fold(ctx context.Context, targets []ShardID) [][]int {
	return c.s.foldGroups(ctx, targets)
}

// QueryFolded sends the branches of members as one statement on the first
// member's shard.
func (c loadConns) QueryFolded(ctx context.Context, targets []ShardID, members []int, build func(db bun.IDB, i int) *bun.SelectQuery) (*sql.Rows, error) {
	query, err := c.s.foldBranches(targets, members, `"_b".*`, build)
	if err != nil {
		return nil, err
	}
	db, err := c.s.conn(ctx, targets[members[0]])
	if err != nil {
		return nil, err
	}
	return db.QueryContext(ctx, query)
}
