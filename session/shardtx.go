package session

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/uptrace/bun"
)

// A unit's transaction on one shard is one of two kinds.
//
// A database/sql transaction (bun.Tx), for one-phase units, and for shards
// whose handle is not a *bun.DB (a bun.Conn, or a bun.Tx in which the unit
// nests a savepoint).
//
// A held transaction, for two-phase units on a *bun.DB: the unit takes one
// connection of the shard's pool (*bun.DB.Conn) and begins and ends the
// transaction on it with explicit statements (BEGIN, then PREPARE
// TRANSACTION, COMMIT or ROLLBACK), and hands the connection back. Why not
// a database/sql transaction: ending one always sends COMMIT or ROLLBACK,
// and after PREPARE TRANSACTION the connection has no transaction left to
// end, so each shard would run a stray COMMIT and PostgreSQL would warn
// "there is no transaction in progress". A held connection whose state is
// not known (a statement ending the transaction failed) is closed, never
// handed back: closing it makes PostgreSQL roll back whatever is open on it.

// heldTx is a held transaction's connection, as the unit's statements and
// [UnitOfWork.DB] see it. Its BeginTx and RunInTx fail: on this connection
// they would begin a database/sql transaction whose COMMIT ends the unit's.
type heldTx struct {
	bun.Conn
	id ShardID
}

var _ bun.IDB = heldTx{}

func (h heldTx) nested() error {
	return fmt.Errorf("%w: the unit's transaction on shard %s is a two-phase one, begun on a connection it holds; "+
		"run statements on it directly (BeginTx and RunInTx there would end the unit's transaction)", ErrUnsupported, h.id)
}

// BeginTx fails with [ErrUnsupported]; see heldTx.
func (h heldTx) BeginTx(context.Context, *sql.TxOptions) (bun.Tx, error) { return bun.Tx{}, h.nested() }

// RunInTx fails with [ErrUnsupported] without calling f; see heldTx.
func (h heldTx) RunInTx(context.Context, *sql.TxOptions, func(context.Context, bun.Tx) error) error {
	return h.nested()
}

// begin begins st's transaction on db (st is locked, or not yet shared).
// hold asks for a held transaction, which is made when db is a *bun.DB.
func (st *shardTx) begin(ctx context.Context, id ShardID, db bun.IDB, opts *sql.TxOptions, hold bool) error {
	pool, ok := db.(*bun.DB)
	if !hold || !ok {
		tx, err := beginTx(ctx, db, opts)
		if err != nil {
			return err
		}
		st.tx, st.held, st.open = tx, nil, true
		return nil
	}
	stmt, err := beginStatement(opts)
	if err != nil {
		return err
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		discard(conn)
		return err
	}
	st.held, st.open = &heldTx{Conn: conn, id: id}, true
	return nil
}

// db returns the handle the unit's statements on the shard run on.
func (st *shardTx) db() bun.IDB {
	if st.held != nil {
		return *st.held
	}
	return st.tx
}

// ender marks st's transaction ended and returns the call that commits
// (commit set) or rolls it back. The call touches no field of st, so that
// it may go on after its caller stopped waiting (see endTxs); ctx's
// cancellation does not reach it.
func (st *shardTx) ender(ctx context.Context, commit bool) func() error {
	st.open = false
	if st.rider {
		return st.riderEnd
	}
	if h := st.held; h != nil {
		st.held = nil
		stmt := "ROLLBACK"
		if commit {
			stmt = "COMMIT"
		}
		ctx := context.WithoutCancel(ctx)
		return func() error { return endHeld(ctx, h.Conn, stmt) }
	}
	if commit {
		return st.tx.Commit
	}
	return st.tx.Rollback
}

// end commits (commit set) or rolls back st's transaction, waiting for
// the shard's answer no longer than ctx: one not in by ctx's end is an
// error wrapping ctx's, and the statement finishes in the background (see
// endTxs). It is sent even when ctx has ended. A transaction not open is
// left alone.
func (st *shardTx) end(ctx context.Context, commit bool) error {
	if !st.open {
		return nil
	}
	return endTxs(ctx, 0, []func() error{st.ender(ctx, commit)}, commit)[0]
}

// rollback rolls st's transaction back.
func (st *shardTx) rollback(ctx context.Context) error {
	if !st.open {
		return nil
	}
	st.open = false
	if st.rider {
		return nil // its lead rolls the shared transaction back
	}
	if h := st.held; h != nil {
		st.held = nil
		return endHeld(ctx, h.Conn, "ROLLBACK")
	}
	return st.tx.Rollback()
}

// prepare runs PREPARE TRANSACTION gid on st's held transaction, which ends
// it: the transaction lives on as a prepared one, and the connection goes
// back to the pool with nothing more sent.
func (st *shardTx) prepare(ctx context.Context, gid string) error {
	st.open = false
	if st.rider {
		return st.riderEnd()
	}
	h := st.held
	if h == nil {
		// A database/sql transaction (the shard's handle is a bun.Conn):
		// it must be ended, and the COMMIT that ends it only hands the
		// connection back (PostgreSQL warns that no transaction is in
		// progress).
		if _, err := st.tx.ExecContext(ctx, "PREPARE TRANSACTION ?", gid); err != nil {
			_ = st.tx.Rollback()
			return err
		}
		_ = st.tx.Commit()
		return nil
	}
	st.held = nil
	_, err := h.ExecContext(ctx, "PREPARE TRANSACTION ?", gid)
	if err != nil {
		discard(h.Conn) // PostgreSQL rolls back what is left open on it
		return err
	}
	_ = h.Close() // the transaction is prepared, whatever Close says
	return nil
}

// endHeld sends COMMIT or ROLLBACK on a held connection and hands it back,
// or closes it when the statement failed.
func endHeld(ctx context.Context, conn bun.Conn, stmt string) error {
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		discard(conn)
		return err
	}
	return conn.Close()
}

// discard closes a held connection instead of handing it back to the pool
// (database/sql closes a connection whose Raw call reports ErrBadConn).
func discard(conn bun.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// beginStatement is the BEGIN statement for opts, which database/sql's
// BeginTx would otherwise translate.
func beginStatement(opts *sql.TxOptions) (string, error) {
	stmt := "BEGIN"
	if opts == nil {
		return stmt, nil
	}
	switch opts.Isolation {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		stmt += " ISOLATION LEVEL READ UNCOMMITTED"
	case sql.LevelReadCommitted:
		stmt += " ISOLATION LEVEL READ COMMITTED"
	case sql.LevelRepeatableRead:
		stmt += " ISOLATION LEVEL REPEATABLE READ"
	case sql.LevelSerializable:
		stmt += " ISOLATION LEVEL SERIALIZABLE"
	default:
		return "", fmt.Errorf("%w: TxOptions: isolation level %s is not one PostgreSQL has", ErrInvalidArgument, opts.Isolation)
	}
	if opts.ReadOnly {
		stmt += " READ ONLY"
	}
	return stmt, nil
}

// riderEnd is what ending a rider's transaction does: nothing, and it
// says so. Commit ends a folded group's transaction through its lead only
// (commitLeads); reaching this is a bug, reported rather than taken for a
// commit.
func (st *shardTx) riderEnd() error {
	return fmt.Errorf("%w: internal error: the transaction of a folded shard was ended through a shard sharing it, not its lead %s",
		ErrUnsupported, st.grp.lead)
}
