package session

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Recovered reports what [Session.Recover] did, by prepared-transaction id
// (gid, "bunshard_<txid>_<shard>").
type Recovered struct {
	Committed  []string // committed, as their decision record said
	RolledBack []string // rolled back: decision abort, or no decision (presumed abort)
	// Left are still prepared: younger than RecoverMinAge, or on a shard
	// that failed (see the error).
	Left []string
}

// RecoverOption adjusts [Session.Recover].
type RecoverOption func(*recoverConfig)

type recoverConfig struct {
	minAge time.Duration
}

// RecoverMinAge makes Recover leave alone the prepared transactions that
// have no decision record yet and were prepared less than d ago: they may
// belong to a Commit still running in another process. Without it Recover
// rolls them back at once, and such a Commit then fails with [ErrAborted]
// (never a split outcome: see the decision record). Transactions whose
// decision is recorded are resolved whatever their age.
func RecoverMinAge(d time.Duration) RecoverOption {
	return func(c *recoverConfig) { c.minAge = d }
}

// decisionRow is a row of the decision table as Recover reads it.
type decisionRow struct {
	TxID     string   `bun:"txid"`
	Decision string   `bun:"decision"`
	Shards   []string `bun:"shards,array"`
	Old      bool     `bun:"old"`
}

// preparedRow is a row of pg_prepared_xacts as Recover reads it.
type preparedRow struct {
	GID string  `bun:"gid"`
	Age float64 `bun:"age"` // seconds since PREPARE
}

// Recover resolves the two-phase commits that a crash, a stopped shard or a
// lost connection left half-done. It finds the prepared transactions of
// bunshard on every shard (pg_prepared_xacts, gids starting "bunshard_", in
// the shard's database) and resolves each unit's transactions from its
// decision record on the coordinator shard: COMMIT PREPARED when the
// decision is commit, ROLLBACK PREPARED when it is abort, and, when there is
// no record, records abort and rolls back (presumed abort: no shard can
// have committed without the record). Every shard of a unit therefore ends
// with all of the unit's writes or none of them. It then deletes the
// decision records that are no longer needed.
//
// Run it at start-up and after a failed two-phase Commit, from one process
// or several (it is safe to run concurrently with itself and with Commit).
// A shard that cannot be reached is reported (a *ShardError in the joined
// error) and its transactions are listed as Left; the others are resolved,
// and running Recover again later finishes the job.
func (s *Session) Recover(ctx context.Context, opts ...RecoverOption) (Recovered, error) {
	var cfg recoverConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	var out Recovered
	if err := s.decisions.ensure(ctx, s); err != nil {
		return out, err
	}
	coord := s.cfg.coordinator
	// Why the records are read before the prepared transactions are
	// listed: a record seen here was written after all of its unit's
	// PREPAREs, so those show up in the listing unless already committed.
	// Deleting a record whose transactions were not listed is then safe.
	var rows []decisionRow
	err := s.shards[coord].NewRaw("SELECT txid, decision, shards, created < now() - interval '1 day' AS old FROM "+
		decisionTable).Scan(WithShardID(ctx, coord), &rows)
	if err != nil {
		return out, &ShardError{Shard: coord, Op: "read decisions", Err: err}
	}
	decided := make(map[string]string, len(rows))
	for _, r := range rows {
		decided[r.TxID] = r.Decision
	}

	root := *s
	root.unit, root.pin = nil, nil
	type prepared struct {
		gid, txid string
		shard     ShardID
		age       time.Duration
		done      bool
	}
	found := make([][]*prepared, len(s.order))
	answered := make([]bool, len(s.order))
	listErr := root.each(ctx, s.order, "recover: list prepared", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		var list []preparedRow
		err := db.NewRaw("SELECT gid, extract(epoch FROM now() - prepared)::float8 AS age FROM pg_prepared_xacts "+
			"WHERE database = current_database() AND starts_with(gid, ?)", gidPrefix).Scan(ctx, &list)
		if err != nil {
			return err
		}
		for _, p := range list {
			txid, ok := parseGID(p.GID)
			if !ok {
				continue
			}
			found[i] = append(found[i], &prepared{gid: p.GID, txid: txid, shard: id, age: time.Duration(p.Age * float64(time.Second))})
		}
		answered[i] = true
		return nil
	})
	errs := []error{listErr}

	// Decide what each unit's transactions become.
	byTx := map[string][]*prepared{}
	var txids []string
	for _, list := range found {
		for _, p := range list {
			if _, ok := byTx[p.txid]; !ok {
				txids = append(txids, p.txid)
			}
			byTx[p.txid] = append(byTx[p.txid], p)
		}
	}
	slices.Sort(txids)
	todo := map[string]string{} // txid -> decision to apply
	for _, txid := range txids {
		if d, ok := decided[txid]; ok {
			todo[txid] = d
			continue
		}
		young := slices.ContainsFunc(byTx[txid], func(p *prepared) bool { return p.age < cfg.minAge })
		if young {
			continue
		}
		var shards []ShardID
		for _, p := range byTx[txid] {
			shards = append(shards, p.shard)
		}
		d, err := s.decisions.decide(ctx, s, txid, decisionAbort, shards)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		todo[txid] = d
	}

	// Apply the decisions, the shards in parallel.
	applyErr := root.each(ctx, s.order, "recover: resolve", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		var errs []error
		for _, p := range found[i] {
			d, ok := todo[p.txid]
			if !ok {
				continue
			}
			stmt := "ROLLBACK PREPARED ?"
			if d == decisionCommit {
				stmt = "COMMIT PREPARED ?"
			}
			if _, err := db.ExecContext(ctx, stmt, p.gid); err != nil && !noSuchGID(err) {
				errs = append(errs, fmt.Errorf("%s %s: %w", strings.Fields(stmt)[0], p.gid, err))
				continue
			}
			p.done = true
		}
		return errors.Join(errs...)
	})
	errs = append(errs, applyErr)

	for _, txid := range txids {
		for _, p := range byTx[txid] {
			switch {
			case !p.done:
				out.Left = append(out.Left, p.gid)
			case todo[txid] == decisionCommit:
				out.Committed = append(out.Committed, p.gid)
			default:
				out.RolledBack = append(out.RolledBack, p.gid)
			}
		}
	}

	// Delete the records that are no longer needed: every shard answered,
	// and none of the unit's transactions is left prepared.
	if !slices.Contains(answered, false) {
		var drop []string
		for _, r := range rows {
			left := slices.ContainsFunc(byTx[r.TxID], func(p *prepared) bool { return !p.done })
			if !left && (r.Decision == decisionCommit || r.Old) {
				drop = append(drop, r.TxID)
			}
		}
		if len(drop) > 0 {
			_, err := s.shards[coord].NewRaw("DELETE FROM "+decisionTable+" WHERE txid IN (?)", bun.List(drop)).
				Exec(WithShardID(ctx, coord))
			if err != nil {
				errs = append(errs, &ShardError{Shard: coord, Op: "delete decisions", Err: err})
			}
		}
	}
	return out, errors.Join(errs...)
}

// parseGID returns the txid of a bunshard gid ("bunshard_<32 hex>_<shard>").
func parseGID(g string) (string, bool) {
	rest, ok := strings.CutPrefix(g, gidPrefix)
	if !ok || len(rest) < 34 || rest[32] != '_' {
		return "", false
	}
	txid := rest[:32]
	if _, err := hex.DecodeString(txid); err != nil {
		return "", false
	}
	return txid, true
}
