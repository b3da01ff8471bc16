package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// opsChoosers are the choosers of the command's own session: it routes
// nothing by key (recover and check name their shards), so placing an object
// is an error and everything else goes to every shard.
func opsChoosers() sessionChoosers {
	return sessionChoosers{
		shard: chooser.ShardChooserFunc(func(context.Context, *schema.Table, any) (session.ShardID, error) {
			return "", fmt.Errorf("bunshard: the command places no objects")
		}),
		identity: chooser.All,
		execute:  chooser.All,
	}
}

// sessionChoosers are the three choosers session.New takes.
type sessionChoosers struct {
	shard    chooser.ShardChooser
	identity chooser.IdentityChooser
	execute  chooser.ExecuteChooser
}

// recoveredJSON is one prepared transaction that recover resolved or left.
type recoveredJSON struct {
	GID    string `json:"gid"`
	Shard  string `json:"shard"`
	Action string `json:"action"` // committed, rolled back, left
}

func (a *app) recoverCommand() *cobra.Command {
	var minAge time.Duration
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Resolve the prepared two-phase transactions of every shard, reporting each (exit 3 when some are left)",
		Long: `recover runs session.Recover: each prepared transaction of a bunshard two-phase unit is
committed when the coordinator's decision record says so, and rolled back when no decision
was or can be recorded (presumed abort). It never rolls back a Commit still running: it
waits for its decision, unless --min-age makes it leave young transactions alone. The
coordinator must be the one the app commits with (coordinator in the config, or
BUNSHARD_COORDINATOR; by default the first shard id in sorted order, as session.New's).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withFleet(cmd, func(ctx context.Context, f *fleet) error {
				sess, err := f.session(opsChoosers())
				if err != nil {
					return configErrorf("%v", err)
				}
				p := a.startProgress(-1, "recover")
				rec, err := sess.Recover(ctx, session.RecoverMinAge(minAge))
				p.done()
				out := []recoveredJSON{}
				add := func(gids []string, action string) {
					for _, g := range gids {
						out = append(out, recoveredJSON{GID: g, Shard: shardOfGID(g), Action: action})
					}
				}
				add(rec.Committed, "committed")
				add(rec.RolledBack, "rolled back")
				add(rec.Left, "left")
				if a.jsonOut {
					_ = a.printJSON(map[string]any{"transactions": out, "error": errString(err)})
				} else {
					var rows [][]string
					for _, r := range out {
						rows = append(rows, []string{r.GID, r.Shard, r.Action})
					}
					a.printTable([]string{"transaction", "shard", "action"}, rows)
				}
				switch {
				case err != nil:
					return err
				case len(rec.Left) > 0:
					return &attention{fmt.Sprintf("%d prepared transaction(s) left; run bunshard recover again later", len(rec.Left))}
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&minAge, "min-age", 0, "leave undecided transactions younger than this alone (do not wait for their Commit)")
	return cmd
}

// shardOfGID returns the shard a bunshard gid ("bunshard_<32 hex>_<shard>") names.
func shardOfGID(gid string) string {
	rest, ok := strings.CutPrefix(gid, "bunshard_")
	if !ok || len(rest) < 34 {
		return ""
	}
	return rest[33:]
}
