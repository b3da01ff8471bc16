package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// PlacedTable is a model's table as it is, or would be, on one shard: the
// PostgreSQL database and schema that hold it and its name there.
type PlacedTable struct {
	Model    *schema.Table
	Database string
	Schema   string
	Name     string
}

// String renders the table as database.schema.name, quoted where needed.
func (t PlacedTable) String() string {
	return quoteName(t.Database) + "." + quoteName(t.Schema) + "." + quoteName(t.Name)
}

// qualified is schema.name, always quoted, for SQL.
func (t PlacedTable) qualified() string {
	return quoteIdent(t.Schema) + "." + quoteIdent(t.Name)
}

// TableOption adjusts [Session.CreateTables] and [Session.DropTables].
type TableOption func(*tableOptions)

type tableOptions struct {
	ifNotExists bool
	ifExists    bool
	foreignKeys bool
	cascade     bool
}

// IfNotExists makes CreateTables skip tables that exist (CREATE TABLE IF NOT
// EXISTS), so that it can be run again.
func IfNotExists() TableOption { return func(o *tableOptions) { o.ifNotExists = true } }

// WithForeignKeys makes CreateTables add the foreign keys Bun derives from
// the models' relations, as Bun's WithForeignKeys does, for relations whose
// two tables are placed on the same shard; a foreign key cannot reach another
// shard. Whatever order models are given in, a table is created after the
// tables its foreign keys reference (see [Session.CreateTables]).
func WithForeignKeys() TableOption { return func(o *tableOptions) { o.foreignKeys = true } }

// IfExists makes DropTables skip tables that do not exist.
func IfExists() TableOption { return func(o *tableOptions) { o.ifExists = true } }

// Cascade makes DropTables drop what depends on the tables too (DROP TABLE
// ... CASCADE): foreign keys of other tables, views.
func Cascade() TableOption { return func(o *tableOptions) { o.cascade = true } }

// Placement returns, for each shard in shard order, the tables of models
// (pointers such as (*Report)(nil)) the session allows there (see
// [Session.AllowMigrate]), in the order of models, as they would be named on
// that shard: it asks each shard its database and search_path, and applies
// the shard's named arguments (see "Layouts" in the package documentation).
// It creates nothing.
//
// The shards considered are those of a [Session.Using] view, else the shard
// pinned in ctx ([WithShardID]), else every shard; a shard outside them is
// neither asked nor reported, and one the MigrateRouter does not allow a
// model on gets none of its tables, view or not. The same holds for
// [Session.CreateTables], [Session.DropTables] and [Session.Tables].
//
// It fails with [ErrInvalidArgument] for a non-model, for a view or context
// pin that names no shard, when a model's table name holds a placeholder
// the shard does not define, and when tables of two of the shards
// considered would be one and the same PostgreSQL table (two shards in one
// database and schema without a table prefix: their rows would mix; a view
// of one of them cannot see the clash); with [ErrUnknownShard] for a pin to
// an unknown shard; with a *ShardError for a shard it cannot ask.
func (s *Session) Placement(ctx context.Context, models ...any) (map[ShardID][]PlacedTable, error) {
	tables, scope, err := s.ddlScope(ctx, "placement", models)
	if err != nil {
		return nil, err
	}
	allowed := make(map[ShardID][]*schema.Table, len(scope))
	var ids []ShardID
	for _, id := range scope {
		for _, t := range tables {
			if s.allowMigrate(ctx, id, t) {
				allowed[id] = append(allowed[id], t)
			}
		}
		if len(allowed[id]) > 0 {
			ids = append(ids, id)
		}
	}
	locs := make([]location, len(ids))
	err = s.each(ctx, ids, "placement", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		loc, err := locate(ctx, db)
		locs[i] = loc
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[ShardID][]PlacedTable, len(ids))
	owner := map[string]ShardID{} // server, database, schema and name -> the shard placing it
	for i, id := range ids {
		db := s.shards[id]
		for _, t := range allowed[id] {
			pt, err := locs[i].place(db, t)
			if err != nil {
				return nil, fmt.Errorf("%w: placement of %s on shard %s: %v", ErrInvalidArgument, t.TypeName, id, err)
			}
			key := locs[i].server + "\x00" + pt.String()
			if other, ok := owner[key]; ok {
				return nil, fmt.Errorf("%w: placement: shards %s and %s would both hold table %s of %s, and their rows would mix; "+
					"give each shard its own database, schema (search_path) or table prefix (a named argument), "+
					"or allow the model on one of them only", ErrInvalidArgument, other, id, pt, t.TypeName)
			}
			owner[key] = id
			out[id] = append(out[id], pt)
		}
	}
	return out, nil
}

// CreateTables creates the tables of models on exactly the shards where the
// session allows them, among the shards of a Using view or context pin if
// there is one ([Session.Placement] says which and how they are named),
// creating the schema that a shard's search_path names first if it does not
// exist. Each shard's tables are created in one transaction on the shard's
// primary, so a shard gets all of them or none; shards run in parallel.
// Tables are created in the order of models, except that a table comes
// after the tables its foreign keys reference (Bun's belongs-to and has-one
// keys, and a many-to-many join table after both of its sides), so any
// order of models works, RegisterModel's (join models first) included.
// Placement DDL in one database is serialised with an advisory lock, so
// that shards sharing a database (and concurrent runs) do not race creating
// a schema.
//
// It fails as Placement does, before any DDL; with [ErrInvalidArgument],
// before any DDL, when [WithForeignKeys] is given and the foreign keys of
// tables on a shard form a cycle (no order can create them; the error names
// it); and with the *ShardError of every shard that failed, joined and
// sorted by shard (the other shards keep their tables).
func (s *Session) CreateTables(ctx context.Context, models []any, opts ...TableOption) error {
	o := tableOptionsOf(opts)
	placed, err := s.placedInOrder(ctx, models, o.foreignKeys)
	if err != nil {
		return err
	}
	return s.each(ctx, placedShards(s.order, placed), "create tables", func(ctx context.Context, _ int, id ShardID, db bun.IDB) error {
		tables := placed[id]
		byModel := make(map[*schema.Table]PlacedTable, len(tables))
		for _, pt := range tables {
			byModel[pt.Model] = pt
		}
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('bunshard.placement'))"); err != nil {
				return err
			}
			var schemas []string
			for _, pt := range tables {
				if !slices.Contains(schemas, pt.Schema) {
					schemas = append(schemas, pt.Schema)
				}
			}
			for _, sc := range schemas {
				if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoteIdent(sc)); err != nil {
					return fmt.Errorf("create schema %s: %w", quoteIdent(sc), err)
				}
			}
			for _, pt := range tables {
				q := tx.NewCreateTable().Model(pt.Model.ZeroIface).ModelTableExpr(pt.qualified())
				if o.ifNotExists {
					q = q.IfNotExists()
				}
				if o.foreignKeys {
					q = foreignKeys(q, pt.Model, byModel)
				}
				if _, err := q.Exec(ctx); err != nil {
					return fmt.Errorf("create table %s for %s: %w", pt.qualified(), pt.Model.TypeName, err)
				}
			}
			return nil
		})
	})
}

// foreignKeys adds to q the foreign keys of t's relations whose referenced
// table is placed on the same shard, as Bun's WithForeignKeys derives them
// (schema.Relation.References), naming the referenced table as placed.
func foreignKeys(q *bun.CreateTableQuery, t *schema.Table, placed map[*schema.Table]PlacedTable) *bun.CreateTableQuery {
	names := make([]string, 0, len(t.Relations))
	for name := range t.Relations {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rel := t.Relations[name]
		ref, ok := placed[rel.JoinTable]
		if !rel.References() || !ok {
			continue
		}
		fk := "(" + columnList(rel.BasePKs) + ") REFERENCES " + ref.qualified() + " (" + columnList(rel.JoinPKs) + ")"
		if rel.OnUpdate != "" {
			fk += " " + rel.OnUpdate
		}
		if rel.OnDelete != "" {
			fk += " " + rel.OnDelete
		}
		q = q.ForeignKey(fk)
	}
	return q
}

// tableOptionsOf applies opts.
func tableOptionsOf(opts []TableOption) tableOptions {
	var o tableOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// placedInOrder is the Placement of models, each shard's tables in the
// order CreateTables creates them (orderPlaced; fks: with their foreign
// keys). It fails as Placement and orderPlaced fail.
func (s *Session) placedInOrder(ctx context.Context, models []any, fks bool) (map[ShardID][]PlacedTable, error) {
	placed, err := s.Placement(ctx, models...)
	if err != nil {
		return nil, err
	}
	return orderPlaced(s.order, placed, fks)
}

// DropTables drops the tables of models from exactly the shards where the
// session allows them, among the shards of a Using view or context pin if
// there is one (Using("a").DropTables touches no other shard), in the
// reverse of the order CreateTables creates them in (referencing tables
// before the tables they reference), in one transaction per shard on its
// primary. It leaves schemas in place. It fails as [Session.CreateTables]
// does, except that a cycle of foreign keys is dropped in the reverse order
// of models (it needs Cascade).
func (s *Session) DropTables(ctx context.Context, models []any, opts ...TableOption) error {
	o := tableOptionsOf(opts)
	placed, err := s.placedInOrder(ctx, models, false)
	if err != nil {
		return err
	}
	return s.each(ctx, placedShards(s.order, placed), "drop tables", func(ctx context.Context, _ int, id ShardID, db bun.IDB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			tables := placed[id]
			for i := len(tables) - 1; i >= 0; i-- {
				pt := tables[i]
				q := tx.NewDropTable().Model(pt.Model.ZeroIface).ModelTableExpr(pt.qualified())
				if o.ifExists {
					q = q.IfExists()
				}
				if o.cascade {
					q = q.Cascade()
				}
				if _, err := q.Exec(ctx); err != nil {
					return fmt.Errorf("drop table %s of %s: %w", pt.qualified(), pt.Model.TypeName, err)
				}
			}
			return nil
		})
	})
}

// Tables reports, for each shard in shard order (the shards of a Using view
// or context pin if there is one, else every shard), which tables of models
// exist on it, found in pg_catalog under the names the shard gives them,
// whether or not the session allows them there; a shard with none is left
// out. It fails as Placement does.
func (s *Session) Tables(ctx context.Context, models ...any) (map[ShardID][]PlacedTable, error) {
	tables, scope, err := s.ddlScope(ctx, "tables", models)
	if err != nil {
		return nil, err
	}
	found := make([][]PlacedTable, len(scope))
	err = s.each(ctx, scope, "tables", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		loc, err := locate(ctx, db)
		if err != nil {
			return err
		}
		var want []PlacedTable
		var schemas, names []string
		for _, t := range tables {
			pt, err := loc.place(db, t)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
			}
			want = append(want, pt)
			schemas, names = append(schemas, pt.Schema), append(names, pt.Name)
		}
		var have []string
		err = db.NewRaw(`SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			JOIN unnest(?::text[], ?::text[]) AS w(s, t) ON n.nspname = w.s AND c.relname = w.t
			WHERE c.relkind IN ('r', 'p')`, pgdialect.Array(schemas), pgdialect.Array(names)).Scan(ctx, &have)
		if err != nil {
			return err
		}
		for _, pt := range want {
			if slices.Contains(have, pt.Schema+"."+pt.Name) {
				found[i] = append(found[i], pt)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[ShardID][]PlacedTable{}
	for i, id := range scope {
		if len(found[i]) > 0 {
			out[id] = found[i]
		}
	}
	return out, nil
}

// ddlScope returns the tables of models and the shards (ddlShards) a
// report named what (Placement, Tables) looks at; a non-model fails as
// modelOf does.
func (s *Session) ddlScope(ctx context.Context, what string, models []any) ([]*schema.Table, []ShardID, error) {
	tables := make([]*schema.Table, len(models))
	for i, m := range models {
		mi, err := s.modelOf(m)
		if err != nil {
			return nil, nil, fmt.Errorf("session: %s: %w", what, err)
		}
		tables[i] = mi.table
	}
	scope, err := s.ddlShards(ctx, what)
	if err != nil {
		return nil, nil, err
	}
	return tables, scope, nil
}

// ddlShards returns the shards table DDL and its reports act on: the
// shards of a Using view, else the shard pinned in ctx, else every shard,
// in shard order. A view is a view for DDL too: Using("a").DropTables
// leaves every other shard's tables alone. A pin to no shard is
// ErrInvalidArgument and an unknown one ErrUnknownShard, as for every
// statement.
func (s *Session) ddlShards(ctx context.Context, what string) ([]ShardID, error) {
	ids, by, err := s.pinOf(ctx, &stmtOptions{}, what)
	if err != nil || ids == nil {
		return s.order, err
	}
	r, err := s.checked(ids, by, what)
	if err != nil {
		return nil, err
	}
	out := make([]ShardID, 0, len(r.Shards))
	for _, id := range s.order {
		if slices.Contains(r.Shards, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// location is where a shard puts unqualified tables, as it told us.
type location struct {
	server   string // identifies the PostgreSQL server: system identifier, address and port
	database string
	schema   string // the first schema of search_path: where unqualified names resolve
}

// locate asks a shard where its tables go.
func locate(ctx context.Context, db bun.IDB) (location, error) {
	var (
		loc        location
		searchPath string
		user       string
		userSchema bool
	)
	err := db.NewRaw(`SELECT concat_ws(':', (SELECT system_identifier FROM pg_control_system()), inet_server_addr(), inet_server_port()),
		current_database(), current_setting('search_path'), current_user,
		EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = current_user)`).
		Scan(ctx, &loc.server, &loc.database, &searchPath, &user, &userSchema)
	if err != nil {
		return location{}, err
	}
	for _, entry := range splitSearchPath(searchPath) {
		if entry == "$user" {
			if !userSchema {
				continue // PostgreSQL skips $user when there is no such schema
			}
			entry = user
		}
		loc.schema = entry
		return loc, nil
	}
	return location{}, fmt.Errorf("the search_path %q names no schema to hold tables", searchPath)
}

// place names t's table on the shard reached through db: its name after the
// shard's named arguments, in the schema its name gives, else the shard's.
func (loc location) place(db bun.IDB, t *schema.Table) (PlacedTable, error) {
	name := t.Name
	if strings.IndexByte(name, '?') >= 0 {
		name = db.NewRaw(name).String() // applies the shard's named arguments
		if strings.IndexByte(name, '?') >= 0 {
			return PlacedTable{}, fmt.Errorf("table name %q of %s keeps a placeholder after the shard's named arguments (%q); "+
				"define it on the shard's bun.DB with WithNamedArg", t.Name, t.TypeName, name)
		}
	}
	pt := PlacedTable{Model: t, Database: loc.database, Schema: loc.schema, Name: name}
	if t.Schema != "" { // schema-qualified in the model: table:schema.name
		if sc, n, ok := strings.Cut(name, "."); ok {
			pt.Schema, pt.Name = sc, n
		}
	}
	return pt, nil
}

// splitSearchPath splits a search_path setting into its schema names,
// unquoting "quoted" ones; $user stays as it is.
func splitSearchPath(path string) []string {
	var out []string
	for len(path) > 0 {
		path = strings.TrimLeft(path, " \t")
		var entry string
		if strings.HasPrefix(path, `"`) {
			var b strings.Builder
			i := 1
			for i < len(path) {
				if path[i] == '"' {
					if i+1 < len(path) && path[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(path[i])
				i++
			}
			entry, path = b.String(), path[i:]
			_, path, _ = strings.Cut(path, ",")
		} else {
			var rest string
			entry, rest, _ = strings.Cut(path, ",")
			entry, path = strings.TrimSpace(entry), rest
		}
		if entry != "" {
			out = append(out, entry)
		}
	}
	return out
}

// placedShards returns the shards of placed, in order.
func placedShards(order []ShardID, placed map[ShardID][]PlacedTable) []ShardID {
	var ids []ShardID
	for _, id := range order {
		if len(placed[id]) > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

func columnList(fields []*schema.Field) string {
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = string(f.SQLName)
	}
	return strings.Join(cols, ", ")
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteName quotes s only if it is not a plain lower-case identifier.
func quoteName(s string) string {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return quoteIdent(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
