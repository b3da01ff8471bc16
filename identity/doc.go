// Package identity holds what bunshard knows about who an object is and
// where it lives: the [ShardID] type, the [Token] a model embeds to remember
// the shard its row came from (SQLAlchemy's identity token), and primary-key
// helpers.
//
// identity is a leaf package: it imports only the standard library, so every
// other bunshard package can use it.
//
// A model opts in to remembering its shard by embedding a Token:
//
//	type Location struct {
//		bun.BaseModel `bun:"table:weather_locations"`
//		identity.Token
//
//		ID        int64 `bun:",pk"`
//		Continent string
//	}
//
// The session stamps the token whenever it loads or writes the object, and
// later updates, deletes and relation loads go back to that shard without
// asking a chooser, even after the field the chooser reads has changed.
// Token has only unexported fields, so Bun maps no column for it.
package identity
