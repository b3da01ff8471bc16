package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
)

// shardCheck is what check found on one shard.
type shardCheck struct {
	Shard       string        `json:"shard"`
	OK          bool          `json:"ok"`
	Error       string        `json:"error"`
	Version     string        `json:"version"`
	Role        string        `json:"role"` // primary or replica
	Replicas    []replicaLag  `json:"replicas"`
	OldPrepared []string      `json:"old_prepared"`
	Tables      []string      `json:"tables"`
	maxLag      time.Duration // largest replica lag
}

// replicaLag is one standby streaming from the shard, as pg_stat_replication shows it.
type replicaLag struct {
	Name       string  `json:"name"`
	State      string  `json:"state"`
	LagSeconds float64 `json:"lag_seconds"`
}

func (a *app) checkCommand() *cobra.Command {
	var olderThan, maxLag time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Ping every shard; show its replicas' lag, old prepared transactions and tables",
		Long: `check connects to every shard and reports: whether it answers, its role (primary, or
replica in recovery), the standbys streaming from it and their replay lag
(pg_stat_replication), the prepared transactions older than --older-than (a two-phase
unit waiting for bunshard recover holds its locks and VACUUM back), and its tables.
Exit code 1 when a shard does not answer, 3 when one has old prepared transactions or a
replica lagging more than --max-lag, 0 otherwise.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withFleet(cmd, func(ctx context.Context, f *fleet) error {
				ids := f.ids()
				results := make([]shardCheck, len(ids))
				p := a.startProgress(len(ids), "check")
				var mu sync.Mutex
				fanout.Run(ctx, len(ids), fanout.Policy{}, func(ctx context.Context, i int) error {
					id := ids[i]
					results[i] = checkShard(ctx, string(id), f.dbs[id], olderThan)
					mu.Lock()
					defer mu.Unlock()
					p.step(fmt.Sprintf("%s: %s", id, map[bool]string{true: "ok", false: "failed"}[results[i].OK]))
					return nil // each shard's error is in its result
				})
				p.done()
				var down, attn []string
				for _, r := range results {
					switch {
					case !r.OK:
						down = append(down, r.Shard)
					case len(r.OldPrepared) > 0 || (maxLag > 0 && r.maxLag > maxLag):
						attn = append(attn, r.Shard)
					}
				}
				a.printChecks(results)
				switch {
				case len(down) > 0:
					return fmt.Errorf("shard(s) %s did not answer", strings.Join(down, ", "))
				case len(attn) > 0:
					return &attention{fmt.Sprintf("shard(s) %s need attention (prepared transactions older than %v, or replicas lagging more than %v)",
						strings.Join(attn, ", "), olderThan, maxLag)}
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 5*time.Minute, "report prepared transactions older than this")
	cmd.Flags().DurationVar(&maxLag, "max-lag", 30*time.Second, "replica replay lag that needs attention (0: never)")
	return cmd
}

// checkShard runs check's queries on one shard under ctx.
func checkShard(ctx context.Context, id string, db *bun.DB, olderThan time.Duration) shardCheck {
	r := shardCheck{Shard: id, Replicas: []replicaLag{}, OldPrepared: []string{}, Tables: []string{}}
	fail := func(what string, err error) shardCheck {
		r.OK, r.Error = false, what+": "+err.Error()
		return r
	}
	var inRecovery bool
	if err := db.NewRaw("SELECT current_setting('server_version'), pg_is_in_recovery()").Scan(ctx, &r.Version, &inRecovery); err != nil {
		return fail("ping", err)
	}
	r.OK, r.Role = true, "primary"
	if inRecovery {
		r.Role = "replica"
	}
	if err := db.NewRaw("SELECT coalesce(application_name, '') AS name, coalesce(state, '') AS state, "+
		"coalesce(extract(epoch FROM replay_lag), 0)::float8 AS lag_seconds FROM pg_stat_replication ORDER BY 1").
		Scan(ctx, &r.Replicas); err != nil {
		return fail("replicas", err)
	}
	for _, rep := range r.Replicas {
		r.maxLag = max(r.maxLag, time.Duration(rep.LagSeconds*float64(time.Second)))
	}
	if err := db.NewRaw("SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "+
		"AND prepared < now() - make_interval(secs => ?) ORDER BY prepared, gid", olderThan.Seconds()).
		Scan(ctx, &r.OldPrepared); err != nil {
		return fail("prepared transactions", err)
	}
	var rows []struct {
		Schema string
		Name   string
	}
	if err := db.NewRaw("SELECT table_schema AS schema, table_name AS name FROM information_schema.tables "+
		"WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").
		Scan(ctx, &rows); err != nil {
		return fail("tables", err)
	}
	for _, t := range rows {
		name := t.Name
		if t.Schema != "public" {
			name = t.Schema + "." + t.Name
		}
		r.Tables = append(r.Tables, name)
	}
	return r
}

func (a *app) printChecks(results []shardCheck) {
	if a.jsonOut {
		_ = a.printJSON(results)
		return
	}
	var rows [][]string
	for _, r := range results {
		if !r.OK {
			rows = append(rows, []string{r.Shard, "FAILED: " + r.Error, "", "", "", ""})
			continue
		}
		reps := "none"
		if len(r.Replicas) > 0 {
			reps = strconv.Itoa(len(r.Replicas)) + ", max lag " + r.maxLag.Round(time.Millisecond).String()
		}
		rows = append(rows, []string{r.Shard, "ok", r.Role, reps, strings.Join(r.OldPrepared, " "), strings.Join(r.Tables, " ")})
	}
	a.printTable([]string{"shard", "ping", "role", "replicas", "old prepared", "tables"}, rows)
}
