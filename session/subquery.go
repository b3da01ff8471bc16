package session

import (
	"database/sql"
	"fmt"
	"slices"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// subquery is a Bun query passed as an argument of a builder call, such as
// Where("id IN (?)", db.NewSelect()...). Bun inlines its SQL into the
// statement, so it runs on whatever shard the statement runs on, whichever
// handle it was built on.
type subquery struct {
	call string       // the builder call: "Where", "Set", ...
	arg  int          // its position among the call's arguments, from 1
	db   *bun.DB      // the handle it was built on
	sel  *SelectQuery // or a session select, rendered per shard (subselect.go)
}

// subqueriesIn appends to subs the Bun queries among the arguments of call.
// Only direct arguments are seen: a query inside bun.In, a slice, or an Apply
// function is not.
func subqueriesIn(subs []subquery, call string, args []any) []subquery {
	for i, a := range args {
		q, ok := a.(interface {
			schema.QueryAppender
			DB() *bun.DB
		})
		if ok {
			subs = append(subs, subquery{call: call, arg: i + 1, db: q.DB()})
		}
		if sel, ok := a.(*SelectQuery); ok {
			subs = append(subs, subquery{call: call, arg: i + 1, sel: sel})
		}
	}
	return subs
}

// vetSubqueries fails, before anything is sent, when a statement that runs
// on shards holds a subquery built on another shard's handle (primary or
// replica), or on a database that is no shard of the session: inlined, it
// would read the rows of the shard the statement runs on, not of the one it
// was built for. A subquery meant to run on each shard is built inside
// Apply, on the shard's own query (b.NewSelect()).
func (s *Session) vetSubqueries(subs []subquery, shards []ShardID, what string) error {
	for _, sq := range subs {
		if sq.sel != nil {
			for _, id := range shards {
				if _, err := sq.sel.subPlan(id); err != nil {
					return fmt.Errorf("%s: argument %d of %s: %w", what, sq.arg, sq.call, err)
				}
			}
			continue
		}
		home, err := s.shardOfHandle(sq.db)
		if err != nil {
			return fmt.Errorf("%w: %s: argument %d of %s is a Bun query built on %v; it would run on %v instead. "+
				"Build a subquery that runs on each shard inside Apply, on the shard's query (b.NewSelect())",
				ErrInvalidArgument, what, sq.arg, sq.call, err, shards)
		}
		if i := slices.IndexFunc(shards, func(id ShardID) bool { return id != home }); i >= 0 {
			return fmt.Errorf("%w: %s: argument %d of %s is a Bun query built on shard %s's handle, but the statement "+
				"runs on shard %s, where it would read %s's rows instead; pin the statement to %s, or build a subquery "+
				"that runs on each shard inside Apply, on the shard's query (b.NewSelect())",
				ErrInvalidArgument, what, sq.arg, sq.call, home, shards[i], shards[i], home)
		}
	}
	return nil
}

// shardOfHandle returns the shard whose primary or replica handle db is, or
// a description of db when it is none: first by identity, then by the
// connection pool it shares with exactly one shard (a clone made by
// WithQueryHook or WithNamedArg of that shard's *bun.DB).
func (s *Session) shardOfHandle(db *bun.DB) (ShardID, error) {
	if db == nil {
		return "", fmt.Errorf("no database")
	}
	var sharing []ShardID
	var pool *sql.DB = db.DB
	for _, id := range s.order {
		for _, h := range s.handles(id) {
			hdb := h.NewSelect().DB()
			if hdb == db {
				return id, nil
			}
			if hdb.DB == pool && !slices.Contains(sharing, id) {
				sharing = append(sharing, id)
			}
		}
	}
	switch len(sharing) {
	case 0:
		return "", fmt.Errorf("a database that is none of the session's shards %v", s.order)
	case 1:
		return sharing[0], nil
	}
	return "", fmt.Errorf("a handle that shares its connection pool with shards %v, so its shard is ambiguous", sharing)
}

// handles returns shard id's primary and replica handles.
func (s *Session) handles(id ShardID) []bun.IDB {
	hs := append([]bun.IDB{s.shards[id]}, s.cfg.replicas.dbs[id]...)
	if s.replicas != nil {
		if sr := s.replicas.byShard[id]; sr != nil {
			for _, r := range sr.list {
				hs = append(hs, r.db)
			}
		}
	}
	return hs
}
