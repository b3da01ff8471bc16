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
// (gid, "bunshard_<txid>_<shard>"). It is exact when Recover races a Commit
// or another Recover: a transaction that one of them finished meanwhile is
// in none of the lists.
type Recovered struct {
	Committed  []string // committed by this Recover, as their decision record said
	RolledBack []string // rolled back by this Recover: no decision was or can be recorded (presumed abort)
	// Left are still prepared: younger than RecoverMinAge, decided on
	// another coordinator than this session's, or on a shard that failed
	// (see the error).
	Left []string
}

// RecoverOption adjusts [Session.Recover].
type RecoverOption func(*recoverConfig)

type recoverConfig struct {
	minAge time.Duration
}

// RecoverMinAge makes Recover leave alone the prepared transactions that
// have no committed decision record and were prepared less than d ago:
// Recover then does not wait for a Commit still running in another process
// to decide (without it, Recover waits for that Commit's decision and
// follows it). Transactions whose decision is recorded are resolved
// whatever their age.
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

// prepared is one prepared transaction Recover found.
type prepared struct {
	gid, txid string
	shard     ShardID
	age       time.Duration
	done      bool // this Recover finished it
	gone      bool // someone else finished it meanwhile
}

// Recover resolves the two-phase commits that a crash, a stopped shard or a
// lost connection left half-done. It finds the prepared transactions of
// bunshard on every shard of the session (pg_prepared_xacts, gids starting
// "bunshard_", in the shard's database) and resolves each from its unit's
// decision record on the coordinator shard: COMMIT PREPARED when the record
// says commit, ROLLBACK PREPARED when there is none and none can be written
// any more (presumed abort: the coordinator's transaction that would have
// written it has ended without committing). For a unit whose coordinator
// transaction is still open (a Commit running in another process), Recover
// waits for it to decide and follows the decision; see [RecoverMinAge].
// Every shard of a unit therefore ends with all of the unit's writes or
// none of them.
//
// It then deletes the records no longer needed: those whose shards are all
// in this session, answered, and hold no prepared transaction of the unit.
// A session that lacks some of a unit's shards (while a shard is added, old
// and new shard sets run side by side) resolves the shards it has and
// keeps the record for a Recover that has the rest. The session's
// coordinator ([WithCoordinator]) must be the one the Commits used:
// prepared transactions decided on another coordinator are left alone
// (listed as Left).
//
// Run it at start-up and after a failed two-phase Commit, from one process
// or several (it is safe to run concurrently with itself and with Commit).
// A shard that cannot be reached is reported (a *ShardError in the joined
// error) and its transactions are listed as Left; the others are resolved,
// and running Recover again later finishes the job.
//
// Every statement runs under ctx, each shard listed and resolved on its
// own: a shard that does not answer by ctx's deadline (a frozen server)
// fails alone, with a *ShardError naming it and matching ctx's error,
// while the others are resolved meanwhile; the records of its units are
// kept. A coordinator that does not answer fails the whole Recover by
// ctx's deadline, naming it: the records are there.
func (s *Session) Recover(ctx context.Context, opts ...RecoverOption) (Recovered, error) {
	if s.cfg.observer == nil {
		return s.recover(ctx, opts)
	}
	ctx, end := s.observeRecover(ctx)
	out, err := s.recover(ctx, opts)
	if end != nil {
		end.End(out, err)
	}
	return out, err
}

func (s *Session) recover(ctx context.Context, opts []RecoverOption) (Recovered, error) {
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
	// listed: a record seen here was committed after all of its unit's
	// PREPAREs, so those show up in the listing unless already finished.
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

	// Each shard is listed and resolved on its own, in parallel: a shard
	// that does not answer by ctx's end fails alone, and the others are
	// resolved meanwhile, rather than after the slowest one answered (by
	// then ctx may have ended).
	root := *s
	root.at = s.at.root()
	found := make([][]*prepared, len(s.order))
	listed := make([]bool, len(s.order))
	decide := func(p *prepared) (string, bool) { // from the records alone
		switch {
		case !strings.HasSuffix(p.txid, coordTag(coord)):
			return "", false // decided on another coordinator: its record is not here
		case decided[p.txid] != "":
			return decided[p.txid], true
		}
		return "", false
	}
	todo := make([]map[string]string, len(s.order)) // per shard: txid -> decision to apply
	resolveErr := root.each(ctx, s.order, "recover", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		var list []preparedRow
		err := db.NewRaw("SELECT gid, extract(epoch FROM now() - prepared)::float8 AS age FROM pg_prepared_xacts "+
			"WHERE database = current_database() AND starts_with(gid, ?)", gidPrefix).Scan(ctx, &list)
		if err != nil {
			return fmt.Errorf("list prepared: %w", err)
		}
		todo[i] = map[string]string{}
		var undecided []string
		for _, row := range list {
			txid, ok := parseGID(row.GID)
			if !ok {
				continue
			}
			p := &prepared{gid: row.GID, txid: txid, shard: id, age: time.Duration(row.Age * float64(time.Second))}
			found[i] = append(found[i], p)
			if d, ok := decide(p); ok {
				todo[i][txid] = d
			} else if strings.HasSuffix(txid, coordTag(coord)) && p.age >= cfg.minAge {
				undecided = append(undecided, txid)
			}
		}
		listed[i] = true
		var errs []error
		if len(undecided) > 0 {
			d, err := s.decisions.probe(ctx, s, undecided)
			if err != nil {
				errs = append(errs, err)
			}
			for _, p := range found[i] {
				if !slices.Contains(undecided, p.txid) {
					continue
				}
				if v, ok := d[p.txid]; ok {
					todo[i][p.txid] = v
				} else if err == nil {
					// Committed and its record deleted since the listing:
					// its unit is finished, nothing of it is left prepared.
					p.gone = true
				}
			}
		}
		for _, p := range found[i] {
			d, ok := todo[i][p.txid]
			if !ok {
				continue
			}
			verb := "ROLLBACK PREPARED"
			if d == decisionCommit {
				verb = "COMMIT PREPARED"
			}
			done, err := finishPrepared(ctx, db, verb, p.gid)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.done, p.gone = done, !done
		}
		return errors.Join(errs...)
	})
	answered := map[ShardID]bool{}
	for i, id := range s.order {
		answered[id] = listed[i]
	}
	errs := []error{resolveErr}

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
	decision := func(p *prepared) string { return todo[slices.Index(s.order, p.shard)][p.txid] }
	for _, txid := range txids {
		for _, p := range byTx[txid] {
			switch {
			case p.gone:
			case !p.done:
				out.Left = append(out.Left, p.gid)
			case decision(p) == decisionCommit:
				out.Committed = append(out.Committed, p.gid)
			default:
				out.RolledBack = append(out.RolledBack, p.gid)
			}
		}
	}

	// Delete the records no longer needed: every shard they name is in this
	// session and answered, and none of the unit's transactions is left
	// prepared. ('abort' records come from older versions of bunshard,
	// which kept them a day.)
	var drop []string
	for _, r := range rows {
		complete := !slices.ContainsFunc(r.Shards, func(sh string) bool { return !answered[ShardID(sh)] })
		left := slices.ContainsFunc(byTx[r.TxID], func(p *prepared) bool { return !p.done && !p.gone })
		if complete && !left && (r.Decision == decisionCommit || r.Old) {
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
