// Package apptest is a small app outside bunshard's module, as an app's own repository
// would be: it has its own go.mod, imports bunshard (replaced by the checkout it sits in)
// and tests itself on real PostgreSQL shards with the public test harness,
// github.com/bunshard/bunshard/shardtest. app_test.go is the test an app copies.
package apptest

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// Account is the app's model: each account lives on the shard of its region.
type Account struct {
	bun.BaseModel `bun:"table:accounts"`
	session.Token

	ID     int64 `bun:",pk"`
	Region string
	Name   string
}

// Regions maps each region to its shard.
var Regions = map[string]session.ShardID{"eu": "eu", "us": "us", "asia": "asia"}

// Open returns the app's session over its shards (one *bun.DB per region) and creates its
// tables. It fails as session.New and CreateTables do.
func Open(ctx context.Context, shards map[session.ShardID]bun.IDB) (*session.Session, error) {
	byRegion := chooser.NewValueMap("region", Regions)
	sess, err := session.New(shards, byRegion, chooser.All, byRegion)
	if err != nil {
		return nil, err
	}
	if err := sess.CreateTables(ctx, []any{(*Account)(nil)}); err != nil {
		return nil, err
	}
	return sess, nil
}
