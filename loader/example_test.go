package loader_test

import (
	"context"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/loader"
)

// Load needs only the shards' handles: each relation is read from its
// parents' shard (the one on their identity.Token). Package session wires
// it with its own routing for Session.LoadRelation. It is compiled, not
// run: it needs shards.
func ExampleLoad() {
	ctx := context.Background()
	var shards map[identity.ShardID]bun.IDB // one handle per shard
	var table *schema.Table                 // the parents' model
	var parents []reflect.Value             // addressable structs of that model

	loaded, err := loader.Load(ctx, loader.Shards(shards), table, parents, "Reports", loader.WithConcurrency(8))
	if err != nil {
		panic(err)
	}
	_ = loaded.Objects() // the reports, for a nested load
}
