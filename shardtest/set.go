package shardtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tempPrefix starts the name of every temporary directory shardtest makes, so that Start can
// find and remove those that crashed runs left behind.
const tempPrefix = "bunshard-pgtest-"

// ownerFile, in each temporary directory, holds the pid of the process that made it.
const ownerFile = "owner.pid"

// options are Start's settings; see the With… functions.
type options struct {
	startTimeout time.Duration
	binDir       string
	settings     []string
}

// Option configures [Start].
type Option func(*options)

// WithStartTimeout sets how long Start, [Server.Start] and [Server.StartReplica] wait for a
// server to accept connections before failing with the tail of its log (default 60 s).
// A zero or negative d keeps the default.
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.startTimeout = d
		}
	}
}

// WithBinDir names the directory holding initdb, postgres and pg_basebackup, instead of
// looking them up. Start fails if initdb or postgres is not there.
func WithBinDir(dir string) Option {
	return func(o *options) { o.binDir = dir }
}

// WithSetting passes "-c name=value" to every server of the set, on top of shardtest's own
// configuration (for example WithSetting("shared_buffers", "256MB") in a benchmark). A bad
// name or value makes the servers fail to start, with PostgreSQL's complaint in the error.
// External servers ignore it.
func WithSetting(name, value string) Option {
	return func(o *options) { o.settings = append(o.settings, name+"="+value) }
}

// Set is a group of PostgreSQL servers that [Start] started (or found in BUNSHARD_TEST_PG),
// with the replicas started from them. It is safe for concurrent use. Close it to stop the
// servers and remove their data.
type Set struct {
	opts     options
	external bool
	bin      string  // directory of the server binaries
	acct     account // who runs them
	root     string  // temporary directory holding data directories and sockets
	servers  []*Server

	mu        sync.Mutex
	closed    bool
	replicas  []*Server
	nreplicas int
}

// Start starts n PostgreSQL clusters in parallel, each with its own data directory and its
// own free port on 127.0.0.1, and waits until all accept connections. When the environment
// variable BUNSHARD_TEST_PG is set it starts nothing and uses the servers named there (see
// the package documentation). It fails, stopping whatever it started, when the server
// binaries are missing (the error says how to install them), when running as root without
// an OS user postgres, or when a server does not come up in time (the error holds the tail
// of its log).
func Start(n int, opts ...Option) (*Set, error) {
	if n < 1 {
		return nil, fmt.Errorf("shardtest: Start(%d): the number of servers must be at least 1", n)
	}
	o := options{startTimeout: 60 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if v := os.Getenv(EnvVar); strings.TrimSpace(v) != "" {
		return startExternal(n, v, o)
	}
	bin, err := findBinDir(o.binDir)
	if err != nil {
		return nil, err
	}
	acct, err := currentAccount()
	if err != nil {
		return nil, err
	}
	removeStale(tempBase(acct))
	tmpl, err := acquireTemplate(bin, acct)
	if err != nil {
		return nil, err
	}
	root, err := newTempRoot(acct)
	if err != nil {
		releaseTemplate(bin)
		return nil, err
	}
	set := &Set{opts: o, bin: bin, acct: acct, root: root, servers: make([]*Server, n)}
	for i := range set.servers {
		name := "pg" + strconv.Itoa(i)
		set.servers[i] = &Server{set: set, name: name, index: i, host: loopback, dataDir: filepath.Join(root, name)}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range set.servers {
		wg.Go(func() { errs[i] = s.create(tmpl) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = set.Close()
		return nil, err
	}
	return set, nil
}

// Len returns the number of servers Start was asked for, not counting replicas.
func (s *Set) Len() int { return len(s.servers) }

// Server returns server i, 0 <= i < Len(); it panics when i is out of range.
func (s *Set) Server(i int) *Server { return s.servers[i] }

// Servers returns the servers Start was asked for, in order, without replicas.
func (s *Set) Servers() []*Server { return slices.Clone(s.servers) }

// Replicas returns the replicas started with [Server.StartReplica], in the order started.
func (s *Set) Replicas() []*Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.replicas)
}

// External reports whether the servers come from BUNSHARD_TEST_PG rather than from Start.
func (s *Set) External() bool { return s.external }

// Dir returns the temporary directory holding the servers' data directories and sockets,
// or "" for external servers.
func (s *Set) Dir() string { return s.root }

// isClosed reports whether Close has been called.
func (s *Set) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every server and replica of the set (fast shutdown, then SIGKILL for any that
// takes more than 10 s) and removes their data. It leaves external servers running, and
// does nothing the second time. It returns the errors of shutdowns that had to kill and of
// removing the directory, joined.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	replicas := slices.Clone(s.replicas)
	s.mu.Unlock()
	if s.external {
		return nil
	}
	// Replicas first: a primary's fast shutdown would otherwise wait for their walsenders.
	errs := []error{stopAll(replicas), stopAll(s.servers)}
	if err := os.RemoveAll(s.root); err != nil {
		errs = append(errs, fmt.Errorf("shardtest: remove %s: %w", s.root, err))
	}
	releaseTemplate(s.bin)
	return errors.Join(errs...)
}

// stopAll shuts the servers down in parallel.
func stopAll(servers []*Server) error {
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			srv.opMu.Lock()
			defer srv.opMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs[i] = srv.shutdown(ctx)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newTempRoot makes a temporary directory named bunshard-pgtest-*, records the current pid
// in it, and gives it to the account.
func newTempRoot(acct account) (string, error) {
	root, err := os.MkdirTemp(tempBase(acct), tempPrefix)
	if err != nil {
		return "", fmt.Errorf("shardtest: make temporary directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = os.RemoveAll(root)
		return "", fmt.Errorf("shardtest: write %s: %w", filepath.Join(root, ownerFile), err)
	}
	// The directory is 0700; with its owner changed to postgres, only postgres and root
	// can enter it, which is what the servers need.
	if err := acct.chown(root); err != nil {
		_ = os.RemoveAll(root)
		return "", err
	}
	return root, nil
}

// tempBase returns the directory to make temporary directories in: os.TempDir(), unless
// running as root with a TMPDIR that other users cannot reach (such as one under /root),
// where the postgres user could not reach its data: /tmp then.
func tempBase(acct account) string {
	dir := os.TempDir()
	if acct.cred == nil {
		return dir
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return dir
		}
	}
}

// removeStale removes, from base, the temporary directories of earlier runs whose process
// is gone, killing any server still running from them first. Directories of live
// processes (other test binaries running now) and those without a pid file yet are left
// alone.
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, tempPrefix+"*"))
	for _, dir := range dirs {
		pid, ok := readPid(filepath.Join(dir, ownerFile))
		if !ok || processAlive(pid) {
			continue
		}
		pidfiles, _ := filepath.Glob(filepath.Join(dir, "*", "postmaster.pid"))
		for _, pf := range pidfiles {
			pm, ok := readPid(pf)
			if !ok || !processAlive(pm) {
				continue
			}
			// The pid may have been reused by an unrelated process: only kill a process
			// whose command line names this directory.
			if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pm)); err == nil &&
				!strings.Contains(string(cmdline), dir) {
				continue
			}
			waitGone(append(killTree(pm), pm), 5*time.Second)
		}
		_ = os.RemoveAll(dir)
	}
}

// readPid reads the pid on the first line of path.
func readPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	return pid, err == nil && pid > 0
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// killTree crashes a postmaster and its children and returns the children's pids. It
// stops the postmaster first (SIGSTOP) so that it forks no new child while they are
// listed, then sends SIGKILL to each child and to the postmaster.
func killTree(pid int) []int {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := children(pid)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return kids
}

// waitGone waits up to d for every process in pids to exit.
func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// templates holds, per binary directory, the initdb'd data directory that clusters are
// copied from: initdb takes a second or two, a copy a fraction of that. A template lives
// while some Set uses it.
var templates = struct {
	mu sync.Mutex
	m  map[string]*template
}{m: map[string]*template{}}

// template is one initdb'd data directory and the number of Sets using it.
type template struct {
	root, data string
	refs       int
}

// acquireTemplate returns the template data directory for bin, running initdb if no live Set
// holds one. Release it with releaseTemplate.
func acquireTemplate(bin string, acct account) (string, error) {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	if t := templates.m[bin]; t != nil {
		t.refs++
		return t.data, nil
	}
	root, err := newTempRoot(acct)
	if err != nil {
		return "", err
	}
	data := filepath.Join(root, "template")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = runHelper(ctx, acct, root, true, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if err == nil {
		err = configure(data)
	}
	if err != nil {
		_ = os.RemoveAll(root)
		return "", err
	}
	templates.m[bin] = &template{root: root, data: data, refs: 1}
	return data, nil
}

// releaseTemplate drops one use of bin's template, removing it after the last.
func releaseTemplate(bin string) {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	t := templates.m[bin]
	if t == nil {
		return
	}
	if t.refs--; t.refs == 0 {
		delete(templates.m, bin)
		_ = os.RemoveAll(t.root)
	}
}

// serverConf is appended to every cluster's postgresql.conf. The port and socket directory
// are given on the command line instead, since copies of one template differ only there.
const serverConf = `
# Added by bunshard shardtest: a throwaway test cluster, durability off for speed.
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 64
max_connections = 100
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
timezone = 'UTC'
log_timezone = 'UTC'
`

// hbaConf trusts every local and 127.0.0.1 connection, replication included.
const hbaConf = `# Written by bunshard shardtest: trust local and loopback connections.
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
`

// configure writes shardtest's settings into the data directory made by initdb. Writing into
// the existing files keeps their owner.
func configure(data string) error {
	conf := filepath.Join(data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("shardtest: configure template: %w", err)
	}
	_, err = f.WriteString(serverConf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shardtest: configure template: write %s: %w", conf, err)
	}
	hba := filepath.Join(data, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("shardtest: configure template: write %s: %w", hba, err)
	}
	return nil
}
