package session

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/uptrace/bun/dialect/pgdialect"
)

// The two-phase commit decision record.
//
// Where it lives: the table bunshard_decisions on the coordinator shard
// (WithCoordinator; the first shard by default), created on first use. One
// row per two-phase commit that reached its decision, written in its own
// committed transaction (autocommit, outside every unit) before the first
// COMMIT PREPARED:
//
//	txid     text PRIMARY KEY  -- the 32 hex digits in the unit's gids
//	decision text              -- 'commit' or 'abort'
//	shards   text[]            -- the shards that prepared (for commit)
//	created  timestamptz
//
// Who writes it: Commit writes 'commit' after every PREPARE succeeded;
// Recover writes 'abort' for prepared transactions it finds without a
// record (presumed abort). Both use INSERT ... ON CONFLICT DO NOTHING and
// then obey whatever row is there, so a Commit and a Recover racing on one
// transaction agree: whoever writes first decides, and a row never changes.
//
// Cleanup: Commit deletes its row once every shard has committed. Recover
// deletes 'commit' rows whose shards hold no prepared transaction of theirs
// any more, and 'abort' rows once they are a day old (kept that long so
// that a Commit stalled between its PREPAREs and its decision still finds
// the abort instead of deciding commit over rolled-back shards).
const decisionTable = "bunshard_decisions"

const (
	decisionCommit = "commit"
	decisionAbort  = "abort"
)

// decisions is the session's access to the decision table; ready caches
// that the table exists. Shared by the session's views.
type decisions struct {
	mu    sync.Mutex
	ready bool
}

// ensure creates the decision table on the coordinator if needed.
func (d *decisions) ensure(ctx context.Context, s *Session) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ready {
		return nil
	}
	id := s.cfg.coordinator
	const ddl = `CREATE TABLE IF NOT EXISTS ` + decisionTable + ` (
	txid text PRIMARY KEY,
	decision text NOT NULL CHECK (decision IN ('commit', 'abort')),
	shards text[] NOT NULL,
	created timestamptz NOT NULL DEFAULT now())`
	_, err := s.shards[id].ExecContext(WithShardID(ctx, id), ddl)
	// Two processes creating the table at once: one of them gets a unique
	// violation on the catalog, and the table exists.
	if err != nil && sqlState(err) != "23505" && sqlState(err) != "42P07" {
		return &ShardError{Shard: id, Op: "create " + decisionTable, Err: err}
	}
	d.ready = true
	return nil
}

// decide records want as the decision of txid unless one is recorded
// already, and returns the recorded decision. An error means the decision
// is unknown (the row may or may not have been written).
func (d *decisions) decide(ctx context.Context, s *Session, txid, want string, shards []ShardID) (string, error) {
	id := s.cfg.coordinator
	db := s.shards[id]
	ctx = WithShardID(ctx, id)
	names := make([]string, len(shards))
	for i, sh := range shards {
		names[i] = string(sh)
	}
	var got string
	err := db.NewRaw("INSERT INTO "+decisionTable+" (txid, decision, shards) VALUES (?, ?, ?) "+
		"ON CONFLICT (txid) DO NOTHING RETURNING decision", txid, want, pgdialect.Array(names)).Scan(ctx, &got)
	if err == nil {
		return got, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", &ShardError{Shard: id, Op: "record decision", Err: err}
	}
	// Someone recorded a decision first: obey it.
	err = db.NewRaw("SELECT decision FROM "+decisionTable+" WHERE txid = ?", txid).Scan(ctx, &got)
	if err != nil {
		return "", &ShardError{Shard: id, Op: "read decision", Err: err}
	}
	return got, nil
}

// forget deletes the decision record of txid.
func (d *decisions) forget(ctx context.Context, s *Session, txid string) error {
	id := s.cfg.coordinator
	_, err := s.shards[id].NewRaw("DELETE FROM "+decisionTable+" WHERE txid = ?", txid).Exec(WithShardID(ctx, id))
	if err != nil {
		return &ShardError{Shard: id, Op: "delete decision", Err: err}
	}
	return nil
}

// sqlState returns the SQLSTATE of a PostgreSQL error anywhere in err's
// chain, or "" when there is none (a lost connection, say). It reads the
// error through interfaces rather than one driver's type, so that it works
// whichever driver a shard's *bun.DB runs on: pgx's *pgconn.PgError has
// SQLState, pgdriver's Error has Field('C').
func sqlState(err error) string {
	var pgx interface{ SQLState() string }
	if errors.As(err, &pgx) {
		return pgx.SQLState()
	}
	var pgdriver interface{ Field(byte) string }
	if errors.As(err, &pgdriver) {
		return pgdriver.Field('C')
	}
	return ""
}

// noSuchGID reports whether err says the prepared transaction does not
// exist (it was already committed or rolled back).
func noSuchGID(err error) bool { return sqlState(err) == "42704" }
