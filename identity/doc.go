// Package identity holds what bunshard knows about who an object is and
// where it lives: the [ShardID] type, the [Token] a model embeds to remember
// the shard its row came from (SQLAlchemy's identity token), the [Key] of an
// object (model type, primary key, shard), the [Map] a unit of work keeps
// its objects in, shard-encoded IDs ([Layout], [Generator]), and
// [ShardError], the error of one shard that every bunshard package returns
// (session.ShardError is the same type).
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
//
// # Identity map
//
// Keys include the shard, so the same primary key on two shards is two
// objects:
//
//	var m identity.Map[*Location]
//	m.Add(identity.NewKey(t, "asia", 7), tokyo)
//	m.Add(identity.NewKey(t, "europe", 7), oslo) // another object
//	got, ok := m.Get(identity.NewKey(t, "asia", int32(7))) // tokyo: keys are canonical
//
// # Shard-encoded IDs
//
// A [Layout] packs a millisecond timestamp, a bucket and a sequence number
// into a positive 64-bit ID that sorts by creation time, as Instagram's and
// go-pg's IDs do. Because the bucket is inside the ID, chooser.FromID maps a
// Get by ID to its one shard without a lookup or a fan-out, and buckets can
// move between shards without changing any ID. A [Generator] issues IDs in
// Go, lock-free and strictly increasing even when the clock steps back;
// [Layout.FunctionSQL] creates the matching PostgreSQL function for a column
// default, so that rows inserted without an ID get one on their shard. IDs
// are unique as long as every bucket has a single issuer:
//
//	l := identity.DefaultLayout() // 41 time, 10 bucket, 12 sequence bits
//	gen, err := identity.NewGenerator(l, 17) // this process owns bucket 17
//	id, err := gen.Next()
//	at, bucket, seq := l.Decode(id)
package identity
