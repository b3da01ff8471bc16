package migrate

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// Scope limits the shards one migration runs on; see [WithScope].
type Scope struct {
	shards []identity.ShardID
	models []any
	kind   string // "OnShards" or "ForModels"; "" for the zero Scope
}

// OnShards limits a migration to the shards ids.
func OnShards(ids ...identity.ShardID) Scope {
	return Scope{shards: slices.Clone(ids), kind: "OnShards"}
}

// ForModels limits a migration to the shards where the tables of models
// (pointers such as (*Tag)(nil)) are: the shards the [WithRouter] router
// does not deny them on. On a shard it allows some of the models and
// denies others, the migration fails with [ErrAmbiguous].
func ForModels(models ...any) Scope {
	return Scope{models: slices.Clone(models), kind: "ForModels"}
}

// WithScope limits the migration named name (Bun's migration name, the
// number its file name starts with, or that number, "_" and the comment)
// to the shards every one of scopes allows. On a shard it keeps the
// migration off, the migration is recorded as applied without running (its
// down is skipped there alike), and listed in [ShardResult.Skipped]: every
// shard then records the same migrations, so Pending means work to do
// everywhere and a shard's groups line up with the others'. The scope is
// decided when the migration runs (or rolls back), so the router's answers
// must not change in between.
//
// [New] fails with [ErrInvalidArgument] for a name that is no migration,
// a name scoped twice, no scopes or an empty one, an unknown shard, or a
// model that is not a pointer to a Bun model struct.
func WithScope(name string, scopes ...Scope) Option {
	sc := scoped{name: name, scopes: slices.Clone(scopes)}
	return func(c *config) { c.scopes = append(c.scopes, sc) }
}

// scoped is one WithScope, checked by New.
type scoped struct {
	name   string
	scopes []Scope
	types  []reflect.Type // the ForModels models' struct types
}

func (m *Migrator) checkScope(sc *scoped, names map[string]bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: WithScope(%q): %s", ErrInvalidArgument, sc.name, fmt.Sprintf(format, args...))
	}
	if !names[sc.name] {
		return bad("no such migration")
	}
	name, _, _ := strings.Cut(sc.name, "_")
	if _, dup := m.scopes[name]; dup {
		return bad("migration %s is scoped twice; give all its scopes in one WithScope", name)
	}
	if len(sc.scopes) == 0 {
		return bad("no scopes; give OnShards or ForModels")
	}
	for _, s := range sc.scopes {
		switch s.kind {
		case "OnShards":
			if len(s.shards) == 0 {
				return bad("OnShards() names no shard; the migration would run nowhere")
			}
			for _, id := range s.shards {
				if _, ok := m.dbs[id]; !ok {
					return fmt.Errorf("%w: %w: OnShards(%q) (shards: %v)", ErrInvalidArgument, ErrUnknownShard, id, m.ids)
				}
			}
		case "ForModels":
			if len(s.models) == 0 {
				return bad("ForModels() names no model")
			}
			for _, model := range s.models {
				typ, err := modelType(m.dbs[m.ids[0]], model)
				if err != nil {
					return bad("ForModels: %v", err)
				}
				sc.types = append(sc.types, typ)
			}
		default:
			return bad("a zero Scope; make scopes with OnShards or ForModels")
		}
	}
	sc.name = name
	m.scopes[name] = sc
	return nil
}

// modelType returns model's struct type, checking that Bun takes it as a
// model (Bun panics on a bad one; that is turned into an error here, once).
func modelType(db *bun.DB, model any) (typ reflect.Type, err error) {
	t := reflect.TypeOf(model)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%T is not a pointer to a model struct such as (*Tag)(nil)", model)
	}
	defer func() {
		if p := recover(); p != nil {
			typ, err = nil, fmt.Errorf("%s is not a Bun model: %v", t.Elem(), p)
		}
	}()
	db.Table(t.Elem())
	return t.Elem(), nil
}

// applies reports whether the scoped migration runs on shard id.
func (sc *scoped) applies(ctx context.Context, m *Migrator, id identity.ShardID, db *bun.DB) (bool, error) {
	for _, s := range sc.scopes {
		if s.kind == "OnShards" && !slices.Contains(s.shards, id) {
			return false, nil
		}
	}
	if len(sc.types) == 0 {
		return true, nil
	}
	var allowed, denied []string
	for _, typ := range sc.types {
		t := db.Table(typ)
		if allowMigrate(ctx, m.cfg.router, id, t) {
			allowed = append(allowed, t.TypeName)
		} else {
			denied = append(denied, t.TypeName)
		}
	}
	switch {
	case len(denied) == 0:
		return true, nil
	case len(allowed) == 0:
		return false, nil
	}
	return false, fmt.Errorf("%w: migration %s is for models %v; on shard %s the router allows %v and denies %v",
		ErrAmbiguous, sc.name, append(allowed, denied...), id, allowed, denied)
}

// allowMigrate is the session's rule: without a router every table is
// everywhere, and only Deny keeps one off a shard.
func allowMigrate(ctx context.Context, r chooser.MigrateRouter, id identity.ShardID, t *schema.Table) bool {
	return r == nil || r.AllowMigrate(ctx, id, t) != chooser.Deny
}
