package session

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
)

// TableDirectory is a [chooser.Directory] kept in a database table that maps
// each key to its shard: the authority behind a [chooser.Lookup], which
// caches its answers. Keys are bigint or text; the table has two columns,
// key (the primary key) and shard.
//
// A TableDirectory is safe for concurrent use. After Assign moves a key,
// call the Lookup's Invalidate for it (each process caches on its own).
type TableDirectory struct {
	db    bun.IDB
	table string
}

var _ chooser.Directory = (*TableDirectory)(nil)

// NewTableDirectory returns a directory in table on db (any shard, or a
// database of its own). It does not create the table; see CreateTable.
func NewTableDirectory(db bun.IDB, table string) *TableDirectory {
	return &TableDirectory{db: db, table: table}
}

// CreateTable creates the directory table if it does not exist, with keys
// of SQL type keyType ("bigint" or "text").
func (d *TableDirectory) CreateTable(ctx context.Context, keyType string) error {
	switch keyType {
	case "bigint", "text":
	default:
		return fmt.Errorf("%w: TableDirectory.CreateTable: key type %q; want bigint or text", ErrInvalidArgument, keyType)
	}
	_, err := d.db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS ? (key %s PRIMARY KEY, shard text NOT NULL)", keyType),
		bun.Ident(d.table))
	return err
}

// Assign records that key lives on shard, replacing an older entry.
func (d *TableDirectory) Assign(ctx context.Context, key any, shard ShardID) error {
	_, err := d.db.ExecContext(ctx, "INSERT INTO ? (key, shard) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET shard = EXCLUDED.shard",
		bun.Ident(d.table), key, string(shard))
	return err
}

// Lookup returns the shards of the keys the table holds, in one statement.
// Keys it does not hold are absent from the answer (Lookup treats them as
// "no opinion"). Integer keys come back as int64 and text keys as string,
// as chooser.Lookup expects.
func (d *TableDirectory) Lookup(ctx context.Context, keys []any) (map[any]ShardID, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT key, shard FROM ? WHERE key IN (?)", bun.Ident(d.table), bun.List(keys))
	if err != nil {
		return nil, fmt.Errorf("session: directory %s: %w", d.table, err)
	}
	defer rows.Close()
	out := make(map[any]ShardID, len(keys))
	for rows.Next() {
		var k any
		var shard string
		if err := rows.Scan(&k, &shard); err != nil {
			return nil, fmt.Errorf("session: directory %s: %w", d.table, err)
		}
		if b, ok := k.([]byte); ok {
			k = string(b)
		}
		out[k] = ShardID(shard)
	}
	return out, rows.Err()
}
