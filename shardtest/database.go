package shardtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// maxIdent is PostgreSQL's limit on identifier length, in bytes (NAMEDATALEN - 1).
const maxIdent = 63

// CreateDatabase creates database name on the server, as the superuser. It fails when the
// name is empty or longer than 63 bytes, when the database exists, and when the server
// cannot be reached.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if err := checkIdent(name); err != nil {
		return fmt.Errorf("shardtest: create database on %s: %w", s.name, err)
	}
	if err := s.adminExec(ctx, "CREATE DATABASE "+quoteIdent(name)); err != nil {
		return fmt.Errorf("shardtest: create database %q on %s: %w", name, s.name, err)
	}
	return nil
}

// DropDatabase drops database name from the server, ending any sessions still connected
// to it (DROP DATABASE … WITH (FORCE)). Dropping a database that does not exist does
// nothing. It fails when the name is invalid and when the server cannot be reached.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := checkIdent(name); err != nil {
		return fmt.Errorf("shardtest: drop database on %s: %w", s.name, err)
	}
	if err := s.adminExec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("shardtest: drop database %q on %s: %w", name, s.name, err)
	}
	return nil
}

// adminExec runs one statement on the server's administrative database over a connection
// of its own, so that a server restarted since leaves no dead pooled connection behind.
func (s *Server) adminExec(ctx context.Context, query string) error {
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(s.adminDSN())))
	defer db.Close()
	_, err := db.ExecContext(ctx, query)
	return err
}

// NewDatabases creates a fresh database on every server of the set (not on replicas) and
// returns their DSNs, DSN i on [Set.Server] i. The names are prefix, a random suffix and
// the server index, such as orders_1f2e3d4c_0, so concurrent tests and round-robin external
// servers never share one. tb.Cleanup drops them again (WITH (FORCE), skipping servers that
// are stopped then). It calls tb.Fatal, after dropping what it created, when a database
// cannot be created. [Set.NewShards] gives ready *bun.DB handles instead.
func (s *Set) NewDatabases(ctx context.Context, tb testing.TB, prefix string) []string {
	tb.Helper()
	return s.newDatabases(ctx, tb, "NewDatabases", prefix, s.servers)
}

// newDatabases creates database i on servers[i] (a server may appear more than once) and
// returns their DSNs, dropped again by tb.Cleanup; caller names the exported function for
// messages.
func (s *Set) newDatabases(ctx context.Context, tb testing.TB, caller, prefix string, servers []*Server) []string {
	tb.Helper()
	names := databaseNames(prefix, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { errs[i] = srv.CreateDatabase(ctx, names[i]) })
	}
	wg.Wait()
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var errs []error
		for i, srv := range servers {
			if !srv.Running() || s.isClosed() {
				continue // its data goes with the set
			}
			if err := srv.DropDatabase(ctx, names[i]); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if err := errors.Join(errs...); err != nil {
		_ = drop()
		tb.Fatalf("shardtest: %s(%q): %v", caller, prefix, err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("shardtest: drop the databases of %s(%q): %v", caller, prefix, err)
		}
	})
	dsns := make([]string, len(servers))
	for i, srv := range servers {
		dsns[i] = srv.DSN(names[i])
	}
	return dsns
}

// databaseNames returns n database names made of prefix (lower-cased, other characters than
// letters, digits and _ replaced by _), a random suffix and the index.
func databaseNames(prefix string, n int) []string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	p := b.String()
	if p == "" || p[0] >= '0' && p[0] <= '9' {
		p = "db_" + p
	}
	var raw [4]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	suffix := "_" + hex.EncodeToString(raw[:]) + "_"
	// Leave room for the suffix and the index within PostgreSQL's 63 bytes.
	if limit := maxIdent - len(suffix) - len(strconv.Itoa(n)); len(p) > limit {
		p = p[:limit]
	}
	names := make([]string, n)
	for i := range names {
		names[i] = p + suffix + strconv.Itoa(i)
	}
	return names
}

// checkIdent fails for names PostgreSQL would reject or silently truncate.
func checkIdent(name string) error {
	switch {
	case name == "":
		return errors.New("empty database name")
	case len(name) > maxIdent:
		return fmt.Errorf("database name %q is %d bytes; PostgreSQL allows %d", name, len(name), maxIdent)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("database name %q contains a NUL byte", name)
	}
	return nil
}

// quoteIdent quotes name as a PostgreSQL identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
