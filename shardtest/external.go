package shardtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// parseExternal parses the value of BUNSHARD_TEST_PG: comma-separated postgres:// or
// postgresql:// URLs naming a host. It fails naming the entry at fault.
func parseExternal(v string) ([]*url.URL, error) {
	var urls []*url.URL
	for i, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			// The *url.Error would quote the entry, password and all.
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			return nil, fmt.Errorf("shardtest: %s entry %d is not a valid URL: %w", EnvVar, i+1, err)
		}
		if (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Hostname() == "" {
			return nil, fmt.Errorf("shardtest: %s entry %d (%s) must look like postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
				EnvVar, i+1, u.Redacted())
		}
		if p := u.Port(); p != "" {
			if _, err := strconv.Atoi(p); err != nil {
				return nil, fmt.Errorf("shardtest: %s entry %d (%s) has a bad port %q", EnvVar, i+1, u.Redacted(), p)
			}
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("shardtest: %s is set but names no server; give comma-separated DSNs or unset it", EnvVar)
	}
	return urls, nil
}

// startExternal builds a Set of n servers over the DSNs in v, reusing them round-robin when
// there are fewer than n, and checks that each answers.
func startExternal(n int, v string, o options) (*Set, error) {
	urls, err := parseExternal(v)
	if err != nil {
		return nil, err
	}
	set := &Set{opts: o, external: true, servers: make([]*Server, n)}
	for i := range set.servers {
		u := urls[i%len(urls)]
		port := 5432
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p) // checked by parseExternal
		}
		set.servers[i] = &Server{set: set, name: "pg" + strconv.Itoa(i), index: i, ext: u, host: u.Hostname(), port: port}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	distinct := set.servers[:min(n, len(urls))]
	errs := make([]error, len(distinct))
	var wg sync.WaitGroup
	for i, s := range distinct {
		wg.Go(func() {
			db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(s.adminDSN())))
			defer db.Close()
			if err := db.PingContext(ctx); err != nil {
				errs[i] = fmt.Errorf("shardtest: %s server %d (%s) does not answer: %w", EnvVar, i+1, s.ext.Redacted(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}
