package migrate

import (
	"context"
	"slices"
	"strings"

	bunmigrate "github.com/uptrace/bun/migrate"

	"github.com/bunshard/bunshard/identity"
)

// ShardStatus is the migration state of one shard.
type ShardStatus struct {
	Shard identity.ShardID
	// Applied are the migrations recorded on the shard, in ascending order,
	// with their group and time.
	Applied bunmigrate.MigrationSlice
	// Pending are the migrations not applied on the shard yet, in the order
	// Migrate would apply them.
	Pending bunmigrate.MigrationSlice
	// Missing are migrations recorded on the shard that the Migrator's set
	// does not have (applied by newer code, or removed).
	Missing bunmigrate.MigrationSlice
	// LastGroupID is the shard's last migration group, 0 if none.
	LastGroupID int64
	// LastErr is the error of this Migrator's last Migrate or Rollback on
	// the shard, nil when it succeeded or none ran. It lives in memory only:
	// a Migrator made later (another process) sees a failed shard as one
	// with Pending migrations, the failed one first.
	LastErr error
	// Err is why the status could not be read, nil when it was.
	Err error
}

// State is "unknown" when the status could not be read, "failed" when the
// Migrator's last run failed on the shard, "pending" when migrations are
// pending, and "applied" when all are applied.
func (s ShardStatus) State() string {
	switch {
	case s.Err != nil:
		return "unknown"
	case s.LastErr != nil:
		return "failed"
	case len(s.Pending) > 0:
		return "pending"
	}
	return "applied"
}

// Status reads every shard's migration table concurrently (one SELECT per
// shard) and returns each shard's status in shard order. It fails with the
// joined errors of the shards it could not read (their Err says why; the
// others' status is complete), such as a shard without migration tables
// (run [Migrator.Init]).
func (m *Migrator) Status(ctx context.Context) ([]ShardStatus, error) {
	out := make([]ShardStatus, len(m.ids))
	errs := m.each(ctx, func(ctx context.Context, id identity.ShardID) error {
		st := &out[m.index(id)]
		st.Shard = id
		m.mu.Lock()
		st.LastErr = m.lastErr[id]
		m.mu.Unlock()
		applied, err := m.bun(id, nil).AppliedMigrations(ctx)
		if err != nil {
			st.Err = err
			return err
		}
		st.LastGroupID = applied.LastGroupID()
		byName := make(map[string]bunmigrate.Migration, len(applied))
		for _, a := range applied {
			byName[a.Name] = a
		}
		known := map[string]bool{}
		for _, mig := range m.migrations.Sorted() {
			known[mig.Name] = true
			if a, ok := byName[mig.Name]; ok {
				mig.ID, mig.GroupID, mig.MigratedAt = a.ID, a.GroupID, a.MigratedAt
				st.Applied = append(st.Applied, mig)
			} else {
				st.Pending = append(st.Pending, mig)
			}
		}
		for _, a := range applied {
			if !known[a.Name] {
				st.Missing = append(st.Missing, a)
			}
		}
		slices.SortFunc(st.Missing, func(a, b bunmigrate.Migration) int { return strings.Compare(a.Name, b.Name) })
		return nil
	})
	return out, joinShardErrs(m.ids, "status", errs)
}
