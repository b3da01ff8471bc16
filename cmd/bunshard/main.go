package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes; see the package documentation.
const (
	exitOK        = 0 // done, nothing needs attention
	exitFailed    = 1 // a shard failed or could not be reached
	exitUsage     = 2 // bad flags, configuration or input: nothing was sent
	exitAttention = 3 // done, and something needs attention
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// attention is returned by a command that finished and printed its result but
// found something to look at (exit code 3).
type attention struct{ what string }

func (a *attention) Error() string { return a.what }

// app is one run of the command: its flags, output and environment.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	configPath  string
	jsonOut     bool
	timeout     time.Duration
	dialTimeout time.Duration
	progress    string // auto, bar, lines, none
	migProgress *migrationProgress
	migDisplay  map[string]string // Bun migration name -> file name (name_comment)
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var att *attention
	var cerr *configError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &att):
		fmt.Fprintf(stderr, "bunshard: %v\n", err)
		return exitAttention
	case errors.As(err, &cerr), isUsage(err):
		fmt.Fprintf(stderr, "bunshard: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "bunshard: %v\n", err)
	return exitFailed
}

// usageError marks a flag or argument error found by cobra or by a command.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// isUsage reports whether err is a usage error: one of ours, or cobra's for an unknown
// subcommand (cobra has no type for it).
func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "bunshard",
		Short: "Operate a bunshard fleet: migrate, recover, check, route",
		Long: `bunshard operates the shards of a bunshard app: Bun migrations on every shard,
resolution of prepared two-phase transactions, a health check, and where a key goes.
Shards come from a TOML file (--config or BUNSHARD_CONFIG) or from BUNSHARD_SHARDS.
Exit codes: 0 done; 1 a shard failed or could not be reached; 2 bad flags,
configuration or input (nothing sent); 3 done, and something needs attention.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "TOML config file (default $"+envConfig+")")
	pf.BoolVar(&a.jsonOut, "json", false, "print the result as JSON")
	pf.DurationVar(&a.timeout, "timeout", 5*time.Minute, "give up after this long (every statement runs under it)")
	pf.DurationVar(&a.dialTimeout, "dial-timeout", 5*time.Second, "bound on each connection attempt")
	pf.StringVar(&a.progress, "progress", "auto", "progress on stderr: auto (a bar on a terminal, plain lines otherwise), bar, lines or none")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		switch a.progress {
		case "auto", "bar", "lines", "none":
			return nil
		}
		return &usageError{fmt.Errorf("--progress %q: use auto, bar, lines or none", a.progress)}
	}
	root.AddCommand(a.migrateCommand(), a.recoverCommand(), a.checkCommand(), a.routeCommand())
	return root
}

// args wraps a cobra argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

// fleet loads the configuration and opens the shards; the caller closes them.
func (a *app) fleet() (*fleet, error) {
	cfg, err := loadConfig(a.configPath, a.getenv)
	if err != nil {
		return nil, err
	}
	return cfg.open(a.dialTimeout)
}

// withFleet runs fn on the configured shards under cmd's context bounded by
// --timeout, and closes the shards after.
func (a *app) withFleet(cmd *cobra.Command, fn func(ctx context.Context, f *fleet) error) error {
	f, err := a.fleet()
	if err != nil {
		return err
	}
	defer f.close()
	ctx, cancel := a.withTimeout(cmd.Context())
	defer cancel()
	return fn(ctx, f)
}

// withTimeout bounds ctx by --timeout.
func (a *app) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.timeout)
}

// printTable prints rows under header, or nothing but the header for no rows.
func (a *app) printTable(header []string, rows [][]string) {
	t := table.NewWriter()
	t.SetOutputMirror(a.stdout)
	h := make(table.Row, len(header))
	for i, c := range header {
		h[i] = c
	}
	t.AppendHeader(h)
	for _, r := range rows {
		row := make(table.Row, len(r))
		for i, c := range r {
			row[i] = c
		}
		t.AppendRow(row)
	}
	t.Render()
}

// printJSON prints v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress reports long work on stderr: a bar on a terminal, a line per step
// otherwise (or as --progress says).
type progress struct {
	bar   *progressbar.ProgressBar
	lines io.Writer
}

// startProgress begins a progress report of total steps (-1: unknown).
func (a *app) startProgress(total int, what string) *progress {
	mode := a.progress
	if mode == "auto" {
		mode = "lines"
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return &progress{bar: progressbar.NewOptions(total,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetPredictTime(false),
		)}
	case "lines":
		return &progress{lines: a.stderr}
	}
	return &progress{}
}

// step records one finished step, described by line.
func (p *progress) step(line string) {
	switch {
	case p.bar != nil:
		p.bar.Describe(line)
		_ = p.bar.Add(1)
	case p.lines != nil:
		fmt.Fprintln(p.lines, line)
	}
}

// done ends the report.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// errString returns err's text, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
