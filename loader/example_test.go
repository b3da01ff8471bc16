package loader_test

import (
	"context"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/loader"
)

// Load is wired by package session (Session.LoadRelation); this shows what
// a caller provides. It is compiled, not run: it needs shards.
func ExampleLoad() {
	ctx := context.Background()
	var shards map[identity.ShardID]bun.IDB // one handle per shard
	var table *schema.Table                 // the parents' model
	var parents []reflect.Value             // addressable structs of that model

	env := &loader.Env{
		Conn: func(ctx context.Context, id identity.ShardID) (context.Context, bun.IDB, error) {
			return ctx, shards[id], nil
		},
		// Keep each relation on its parents' shard.
		Route: func(_ context.Context, _ *schema.Table, from identity.ShardID, pinned bool) (loader.Route, error) {
			return loader.Route{Shards: []identity.ShardID{from}, Pinned: pinned}, nil
		},
		// Where a model keeps its shard: an embedded identity.Token.
		Tokens: func(t reflect.Type) func(reflect.Value) *identity.Token {
			f, ok := t.FieldByName("Token")
			if !ok || f.Type != reflect.TypeFor[identity.Token]() {
				return nil
			}
			return func(v reflect.Value) *identity.Token {
				return v.FieldByIndex(f.Index).Addr().Interface().(*identity.Token)
			}
		},
	}
	loaded, err := loader.Load(ctx, env, table, parents, "Reports")
	if err != nil {
		panic(err)
	}
	_ = loaded.Objects() // the reports, for a nested load
}
