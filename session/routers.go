package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
)

// AllowRelation reports whether a and b, pointers to model structs, may be
// related (one held in a relation field of the other), as Insert, Update
// and a unit's flush decide it: the session's ShardChooser if it is a
// chooser.RelationRouter that allows or denies, else the default,
// chooser.SameShard (false for two objects on different shards). Each
// object's shard is the one its [Token] records, "" when it has none. It
// fails with [ErrInvalidArgument] for a non-model.
func (s *Session) AllowRelation(ctx context.Context, a, b any) (bool, error) {
	// The arguments are checked first, with or without a RelationRouter:
	// a non-model is a caller's mistake whatever the chooser.
	oa, err := s.object(a)
	if err != nil {
		return false, fmt.Errorf("session: AllowRelation: %w", err)
	}
	ob, err := s.object(b)
	if err != nil {
		return false, fmt.Errorf("session: AllowRelation: %w", err)
	}
	ok, _ := s.mayRelate(ctx, oa, ob, false)
	return ok, nil
}

// AllowMigrate reports whether model's table (model is a pointer such as
// (*Report)(nil)) may exist on shard id, as the session's ShardChooser says
// if it is a chooser.MigrateRouter; without one it reports true. It fails
// with [ErrUnknownShard] or [ErrInvalidArgument].
func (s *Session) AllowMigrate(ctx context.Context, id ShardID, model any) (bool, error) {
	if _, ok := s.shards[id]; !ok {
		return false, s.unknown(id, "AllowMigrate")
	}
	mi, err := s.modelOf(model)
	if err != nil {
		return false, fmt.Errorf("session: AllowMigrate: %w", err)
	}
	return s.allowMigrate(ctx, id, mi.table), nil
}

func (s *Session) allowMigrate(ctx context.Context, id ShardID, t *schema.Table) bool {
	mr, ok := s.shardChooser.(chooser.MigrateRouter)
	return !ok || mr.AllowMigrate(ctx, id, t) != chooser.Deny
}

// object describes a model object to a RelationRouter.
func (s *Session) object(obj any) (chooser.Object, error) {
	mi, kind, err := s.dest(obj)
	if err != nil {
		return chooser.Object{}, err
	}
	if kind != destStruct {
		return chooser.Object{}, fmt.Errorf("%w: want a non-nil pointer to a model struct, got %T", ErrInvalidArgument, obj)
	}
	o := chooser.Object{Table: mi.table, Obj: obj}
	if tok := mi.token(reflect.ValueOf(obj).Elem()); tok != nil {
		o.Shard, _ = tok.Shard()
	}
	return o, nil
}

// checkRelations fails an insert or update before anything is sent when
// mayRelate denies a relation between an object being written (on the
// shard it is going to) and an object held in one of its relation fields
// (on the shard its Token records).
func (s *Session) checkRelations(ctx context.Context, op string, mi *modelInfo, groups map[ShardID][]reflect.Value) error {
	if (op != "insert" && op != "update") || len(mi.table.Relations) == 0 {
		return nil
	}
	names := make([]string, 0, len(mi.table.Relations))
	for name := range mi.table.Relations {
		names = append(names, name)
	}
	slices.Sort(names)
	ids := make([]ShardID, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, obj := range groups[id] {
			self := chooser.Object{Table: mi.table, Obj: obj.Addr().Interface(), Shard: id}
			for _, name := range names {
				rel := mi.table.Relations[name]
				other, err := s.info(rel.JoinTable.Type)
				if err != nil {
					return err
				}
				var denied error
				related(obj, rel, func(p reflect.Value) {
					if denied != nil {
						return
					}
					v := p.Elem()
					o := chooser.Object{Table: other.table, Obj: p.Interface()}
					if tok := other.token(v); tok != nil {
						o.Shard, _ = tok.Shard()
					}
					if ok, by := s.mayRelate(ctx, self, o, false); !ok {
						where := "no shard yet"
						if o.Shard != "" {
							where = "shard " + string(o.Shard)
						}
						denied = fmt.Errorf("%w: %s %s: the object goes to shard %s but its relation %s holds a %s on %s; %s",
							ErrRelationDenied, op, mi.table.TypeName, id, name, other.table.TypeName, where, by)
					}
				})
				if denied != nil {
					return denied
				}
			}
		}
	}
	return nil
}
