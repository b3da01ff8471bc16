package bench

import (
	"context"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
)

// EncLocation is a weather location whose id encodes its shard's bucket.
type EncLocation struct {
	bun.BaseModel `bun:"table:enc_locations"`
	identity.Token

	ID        int64  `bun:",pk"`
	Continent string `bun:",notnull"`
	City      string `bun:",notnull"`
}

type encEnv struct {
	byID *chooser.FromID
	ids  []int64 // the 1,000 ids fetched, in the order of getIDs
	home []int   // their shard index
}

var (
	encOnce sync.Once
	enc     *encEnv
	encErr  error
)

// loadEnc writes 2,000 locations with shard-encoded ids (once per process).
func loadEnc(b testing.TB, e *env) *encEnv {
	b.Helper()
	encOnce.Do(func() { enc, encErr = setupEnc(context.Background(), e) })
	if encErr != nil {
		b.Fatal(encErr)
	}
	return enc
}

func setupEnc(ctx context.Context, e *env) (*encEnv, error) {
	layout := identity.DefaultLayout()
	assign := chooser.Spread(layout.Buckets(), weather.Shards...)
	byID, err := chooser.NewFromID("id", layout, assign)
	if err != nil {
		return nil, err
	}
	gens := map[identity.ShardID]*identity.Generator{}
	for bucket, id := range assign {
		if gens[id] == nil {
			if gens[id], err = identity.NewGenerator(layout, bucket); err != nil {
				return nil, err
			}
		}
	}
	ee := &encEnv{byID: byID}
	all := make([]int64, nLocations)
	rows := make([][]EncLocation, len(weather.Shards))
	for i := range nLocations {
		shard := shardOfLocation(int64(i + 1))
		id, err := gens[weather.Shards[shard]].Next()
		if err != nil {
			return nil, err
		}
		all[i] = id
		rows[shard] = append(rows[shard], EncLocation{ID: id, Continent: weather.Continents[shard], City: "c"})
	}
	for i, db := range e.dbs {
		if _, err := db.NewCreateTable().Model((*EncLocation)(nil)).IfNotExists().Exec(ctx); err != nil {
			return nil, err
		}
		if _, err := db.NewInsert().Model(&rows[i]).Exec(ctx); err != nil {
			return nil, err
		}
	}
	for _, id := range getIDs {
		ee.ids = append(ee.ids, all[id-1])
		ee.home = append(ee.home, shardOfLocation(id))
	}
	return ee, nil
}
