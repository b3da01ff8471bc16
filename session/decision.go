package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// The two-phase commit protocol and its decision record.
//
// Where the record lives: the table bunshard_decisions on the coordinator
// shard (WithCoordinator; the first shard by default), created on first
// use:
//
//	txid     text PRIMARY KEY  -- the 32 hex digits in the unit's gids
//	decision text              -- 'commit' ('abort' only in records of older versions)
//	shards   text[]            -- the shards the unit wrote on
//	created  timestamptz
//
// Commit (coordinator-local commit, as Citus does it). The coordinator's
// transaction is the unit's own when the unit wrote there, else one begun
// to hold only the record.
//
//  1. In the coordinator's transaction, before any PREPARE: raise
//     synchronous_commit to on if it is off (SET LOCAL), and INSERT the
//     record (txid, 'commit', shards). It is not visible yet.
//  2. PREPARE TRANSACTION on every other shard, in parallel. If one fails,
//     the coordinator's transaction rolls back (and the record with it)
//     and the prepared ones are rolled back.
//  3. COMMIT the coordinator's transaction, in one phase. That commit is
//     the decision: the record, and the coordinator's writes, become
//     visible together, and synchronous_commit=on makes the COMMIT wait
//     until its WAL is flushed, whatever the server's setting, so no
//     crash can lose a decision that any shard then acts on.
//  4. COMMIT PREPARED on every other shard, in parallel; then DELETE the
//     record.
//
// Recover (presumed abort). For a prepared transaction it finds, a
// committed record says commit. Without one, Recover probes: in a
// transaction on the coordinator, it INSERTs an 'abort' row for the txid
// (ON CONFLICT DO NOTHING), reads what is there, and rolls the probe
// back. Why that is exact: step 1 comes before every PREPARE, so when
// Recover sees a prepared transaction, the record has been inserted by a
// coordinator transaction that is either still open (the INSERT waits for
// it to end, then conflicts if it committed), committed (conflict: commit),
// or rolled back, lost in a crash or never to commit (no row: abort, and
// since that transaction was the only one that could ever commit the
// record, no commit can follow). Recover thus never aborts a Commit that is
// still running: it waits for its decision. No abort record is written, so
// none piles up, and none needs to be durable.
//
// A record is deleted only when nothing can need it: by Commit once every
// shard committed, or by Recover when its session has every shard the
// record names, each answered, and none holds a prepared transaction of
// the unit any more. (A record deleted after its unit finished makes a
// later probe say abort, but there is nothing left to roll back then.)
//
// The txid ends with a tag of the coordinator's shard id, so that Recover
// leaves alone the prepared transactions of units decided on another
// coordinator, whose records it cannot see.
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
	// Durable, like the records: a table lost in a crash would fail every
	// later Commit and Recover of this session, which believes it exists.
	// Why a goroutine: RunInTx's COMMIT takes no context (the drivers send
	// it with context.Background), so the wait for it is bounded by ctx
	// here; the call left behind ends when the coordinator answers (or its
	// statements' deadline, ctx's, passes).
	done := make(chan error, 1)
	go func() {
		done <- s.shards[id].RunInTx(WithShardID(ctx, id), nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'")
			if err == nil {
				_, err = tx.ExecContext(ctx, ddl)
			}
			return err
		})
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return &ShardError{Shard: id, Op: "create " + decisionTable, Err: fmt.Errorf("no answer before the context ended: %w", context.Cause(ctx))}
	}
	// Two processes creating the table at once: one of them gets a unique
	// violation on the catalog (23505), "relation already exists" (42P07) or
	// "type already exists" (42710, the table's row type; seen on pgx in
	// TestRecoverRacingCommit), and the table exists.
	if st := sqlState(err); err != nil && st != "23505" && st != "42P07" && st != "42710" {
		return &ShardError{Shard: id, Op: "create " + decisionTable, Err: err}
	}
	d.ready = true
	return nil
}

// recordSQL is step 1 of Commit, one round trip: synchronous_commit is
// raised only from off, so that a stronger setting (remote_apply) stays.
const recordSQL = "SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'; " +
	"INSERT INTO " + decisionTable + " (txid, decision, shards) VALUES (?, '" + decisionCommit + "', ?)"

// record runs step 1 of Commit on the coordinator's transaction db.
func (d *decisions) record(ctx context.Context, db bun.IDB, txid string, shards []ShardID) error {
	names := make([]string, len(shards))
	for i, sh := range shards {
		names[i] = string(sh)
	}
	_, err := db.ExecContext(ctx, recordSQL, txid, pgdialect.Array(names))
	return err
}

// probe returns the decision of each txid whose record is not known to be
// committed: "commit", "abort", or nothing for a txid whose record was
// committed and deleted meanwhile (its unit is finished). It waits for the
// coordinator transactions still deciding; see the protocol above.
func (d *decisions) probe(ctx context.Context, s *Session, txids []string) (map[string]string, error) {
	// Why try again: the probe often follows a broken connection, and the
	// pool may hand out another one that died with it. A probe changes
	// nothing, so trying again is safe.
	var err error
	for range 3 {
		var out map[string]string
		if out, err = d.probeOnce(ctx, s, txids); err == nil || ctx.Err() != nil {
			return out, err
		}
	}
	return nil, err
}

func (d *decisions) probeOnce(ctx context.Context, s *Session, txids []string) (map[string]string, error) {
	id := s.cfg.coordinator
	ctx = WithShardID(ctx, id)
	// Read committed: the read after the INSERT must see what the
	// transactions it waited for committed.
	tx, err := s.shards[id].BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, &ShardError{Shard: id, Op: "probe decisions", Err: err}
	}
	defer func() { _ = tx.Rollback() }() // the probe's rows are never kept
	_, err = tx.NewRaw("INSERT INTO "+decisionTable+" (txid, decision, shards) "+
		"SELECT t, '"+decisionAbort+"', '{}' FROM unnest(?::text[]) AS t ON CONFLICT (txid) DO NOTHING",
		pgdialect.Array(txids)).Exec(ctx)
	if err != nil {
		return nil, &ShardError{Shard: id, Op: "probe decisions", Err: err}
	}
	var rows []struct {
		TxID     string `bun:"txid"`
		Decision string `bun:"decision"`
	}
	err = tx.NewRaw("SELECT txid, decision FROM "+decisionTable+" WHERE txid = ANY(?::text[])", pgdialect.Array(txids)).Scan(ctx, &rows)
	if err != nil {
		return nil, &ShardError{Shard: id, Op: "probe decisions", Err: err}
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.TxID] = r.Decision
	}
	return out, nil
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

// finishPrepared runs COMMIT PREPARED or ROLLBACK PREPARED (verb) of gid on
// db. It reports whether this call finished the transaction: false with no
// error when it was gone already (another Commit or Recover finished it).
// While another session is finishing it (PostgreSQL says "busy"), it waits
// and tries again, so that the answer is definite.
func finishPrepared(ctx context.Context, db bun.IDB, verb, gid string) (bool, error) {
	wait := time.Millisecond
	for {
		_, err := db.ExecContext(ctx, verb+" ?", gid)
		switch {
		case err == nil:
			return true, nil
		case noSuchGID(err):
			return false, nil
		case sqlState(err) != "55000": // 55000: prepared transaction is busy
			return false, fmt.Errorf("%s %s: %w", verb, gid, err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%s %s: %w", verb, gid, errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
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
