package migrate_test

import (
	"context"

	"github.com/uptrace/bun"
	bunmigrate "github.com/uptrace/bun/migrate"
)

// registerAccounts registers a Go migration the way applications do, with
// Bun's Register, which names it after the file it is called from: this
// file's name makes it migration 20260101000001 ("accounts_test").
func registerAccounts(ms *bunmigrate.Migrations) {
	ms.MustRegister(func(ctx context.Context, db *bun.DB) error {
		_, err := db.ExecContext(ctx, `CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL)`)
		return err
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.ExecContext(ctx, `DROP TABLE accounts`)
		return err
	})
}
