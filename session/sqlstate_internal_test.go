package session

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/internal/pgtest"
)

// TestSQLState reads the SQLSTATE of errors from real servers through both
// drivers a shard's *bun.DB may run on, wrapped as the session wraps them.
func TestSQLState(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared().NewDatabases(ctx, t, "sqlstate")[0]
	drivers := map[string]*sql.DB{
		"pgdriver": sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))),
		"pgx":      stdlib.OpenDB(*pgxConfig(t, dsn)),
	}
	for name, db := range drivers {
		t.Cleanup(func() { db.Close() })
		t.Run(name, func(t *testing.T) {
			for _, tt := range []struct{ query, want string }{
				{"SELECT * FROM no_such_table", "42P01"},
				{"COMMIT PREPARED 'bunshard_no_such_gid'", "42704"},
				{"CREATE TABLE twice (n int); CREATE TABLE twice (n int)", "42P07"},
			} {
				_, err := db.ExecContext(ctx, tt.query)
				if err == nil {
					t.Fatalf("%s succeeded; want an error", tt.query)
				}
				wrapped := &ShardError{Shard: "a", Op: "test", Err: fmt.Errorf("wrapped: %w", err)}
				if got := sqlState(wrapped); got != tt.want {
					t.Errorf("sqlState(%s: %v) = %q; want %q", tt.query, err, got, tt.want)
				}
			}
		})
	}
	if got := sqlState(fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01"})); got != "57P01" {
		t.Errorf("sqlState(a wrapped *pgconn.PgError) = %q; want 57P01", got)
	}
	if got := sqlState(fmt.Errorf("no code")); got != "" {
		t.Errorf("sqlState(a plain error) = %q; want \"\"", got)
	}
}

// pgxConfig parses dsn for pgx's database/sql driver.
func pgxConfig(t *testing.T, dsn string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse %s for pgx: %v", dsn, err)
	}
	return cfg
}
