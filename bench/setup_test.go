package bench

import (
	"context"
	"database/sql"
	"fmt"
	"go.uber.org/goleak"
	"os"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 4, func() error {
		if theEnv != nil { // the benchmarks' pools live as long as the process
			for _, db := range theEnv.dbs {
				db.Close()
			}
		}
		closeFoldEnvs()
		for _, e := range pgxEnvs {
			for _, db := range e.dbs {
				db.Close()
			}
		}
		for _, p := range pools {
			p.Close()
		}
		return goleak.Find()
	}))
}

// The default scale of BENCH.md.
const (
	nLocations = 2000
	perLoc     = 50
)

type env struct {
	dbs  []*bun.DB // in weather.Shards order
	byID map[session.ShardID]*bun.DB
	data weather.Data
	dsns []string // in weather.Shards order
}

var (
	setupOnce sync.Once
	theEnv    *env
	setupErr  error
)

// load starts (once per process) four shards holding the weather data.
func load(b testing.TB) *env {
	b.Helper()
	setupOnce.Do(func() { theEnv, setupErr = setup(context.Background()) })
	if setupErr != nil {
		b.Fatal(setupErr)
	}
	return theEnv
}

func setup(ctx context.Context) (*env, error) {
	set := pgtest.Shared()
	dialect := pgdialect.New()
	e := &env{byID: map[session.ShardID]*bun.DB{}, data: weather.Generate(nLocations, perLoc, 42)}
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range weather.Shards {
		name := "bench"
		srv := set.Server(i % set.Len())
		if set.External() || set.Len() < len(weather.Shards) {
			name = fmt.Sprintf("bench_%d", i)
		}
		_ = srv.DropDatabase(ctx, name)
		if err := srv.CreateDatabase(ctx, name); err != nil {
			return nil, err
		}
		e.dsns = append(e.dsns, srv.DSN(name))
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(srv.DSN(name)))), dialect)
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		weather.Register(db)
		if err := weather.CreateSchema(ctx, db); err != nil {
			return nil, err
		}
		e.dbs = append(e.dbs, db)
		e.byID[id] = db
		shards[id] = db
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent)
	if err != nil {
		return nil, err
	}
	if err := s.Insert(ctx, &e.data.Locations); err != nil {
		return nil, err
	}
	for lo := 0; lo < len(e.data.Reports); lo += 10000 {
		chunk := e.data.Reports[lo:min(lo+10000, len(e.data.Reports))]
		if err := s.Insert(ctx, &chunk); err != nil {
			return nil, err
		}
	}
	for _, db := range e.dbs {
		if _, err := db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// session returns a session over the bench shards.
func (e *env) session(b testing.TB, ic chooser.IdentityChooser, opts ...session.Option) *session.Session {
	return e.sessionWith(b, weather.ShardChooser, ic, opts...)
}

// sessionWith returns a session over the bench shards with the given
// ShardChooser.
func (e *env) sessionWith(b testing.TB, sc chooser.ShardChooser, ic chooser.IdentityChooser, opts ...session.Option) *session.Session {
	shards := map[session.ShardID]bun.IDB{}
	for id, db := range e.byID {
		shards[id] = db
	}
	opts = append([]session.Option{session.WithShardOrder(weather.Shards...)}, opts...)
	s, err := session.New(shards, sc, ic, weather.ByContinent, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// shardOfLocation is what an application that knows its placement computes:
// location i lives on the shard of continent (i-1) mod 4.
func shardOfLocation(id int64) int { return int(id-1) % len(weather.Shards) }

// knownShard is an IdentityChooser that knows each location's shard.
var knownShard = chooser.IdentityChooserFunc(func(_ context.Context, k chooser.Key) (chooser.Target, error) {
	return targets[shardOfLocation(k.PK[0].(int64))], nil
})

var targets = func() []chooser.Target {
	out := make([]chooser.Target, len(weather.Shards))
	for i, id := range weather.Shards {
		out[i] = chooser.Shards(id)
	}
	return out
}()

// getIDs are the 1,000 location ids W1 and W2 fetch.
var getIDs = func() []int64 {
	ids := make([]int64, 1000)
	for i := range ids {
		ids[i] = int64(i*7%nLocations + 1)
	}
	return ids
}()
