package shardtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// loopback is the address every started server listens on.
const loopback = "127.0.0.1"

// logName is the server's log file, in its data directory.
const logName = "shardtest.log"

// errPortInUse marks a start that failed because another process took the port first.
var errPortInUse = errors.New("shardtest: port already in use")

// Server is one PostgreSQL server of a [Set]: a cluster that shardtest started, a replica of
// one, or an external server from BUNSHARD_TEST_PG. It is safe for concurrent use; Start,
// Stop, Kill and StartReplica's setup of a replica are serialised per server.
type Server struct {
	set     *Set
	name    string
	index   int
	primary *Server  // for a replica, the server it replicates
	ext     *url.URL // for an external server, its DSN
	host    string
	dataDir string

	opMu sync.Mutex // serialises Start, Stop, Kill and Close's shutdown

	mu   sync.Mutex // guards port and p
	port int
	p    *proc // the running (or last) postmaster; nil when stopped
}

// proc is one run of a postmaster.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// String returns the server's name.
func (s *Server) String() string { return s.name }

// Name returns the server's name: "pg0", "pg1", … in Start's order, and "pg0-replica1" and
// so on for replicas.
func (s *Server) Name() string { return s.name }

// Index returns the server's position in [Set.Servers]; a replica returns its primary's.
func (s *Server) Index() int { return s.index }

// Primary returns the server a replica replicates, or nil for a server that is no replica.
func (s *Server) Primary() *Server { return s.primary }

// External reports whether the server comes from BUNSHARD_TEST_PG.
func (s *Server) External() bool { return s.ext != nil }

// Host returns the host the server listens on (127.0.0.1 unless external).
func (s *Server) Host() string { return s.host }

// Port returns the server's TCP port. It stays the same across Stop and Start.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// DataDir returns the server's data directory, or "" for an external server.
func (s *Server) DataDir() string { return s.dataDir }

// LogPath returns the server's log file, or "" for an external server.
func (s *Server) LogPath() string {
	if s.ext != nil {
		return ""
	}
	return filepath.Join(s.dataDir, logName)
}

// DSN returns a pgdriver URL connecting as the superuser to database on this server, such
// as postgres://postgres@127.0.0.1:54321/mydb?sslmode=disable; an empty database means
// postgres. For an external server it is the DSN from BUNSHARD_TEST_PG with its database
// replaced (and sslmode=disable added when it names no sslmode).
func (s *Server) DSN(database string) string {
	if database == "" {
		database = "postgres"
	}
	if s.ext != nil {
		u := *s.ext
		u.Path = "/" + database
		u.RawPath = ""
		q := u.Query()
		if q.Get("sslmode") == "" {
			q.Set("sslmode", "disable")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort(s.host, strconv.Itoa(s.Port())),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// adminDSN returns the DSN used for administrative statements and readiness checks.
func (s *Server) adminDSN() string {
	if s.ext != nil {
		if db := strings.TrimPrefix(s.ext.Path, "/"); db != "" {
			return s.DSN(db)
		}
	}
	return s.DSN("postgres")
}

// Running reports whether the server's postmaster is running (not whether it accepts
// connections yet). External servers always report true.
func (s *Server) Running() bool {
	if s.ext != nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p != nil && !s.p.exited()
}

// Stop shuts the server down (fast shutdown: open sessions are ended, committed data kept)
// and waits until it has exited; [Server.Start] brings it back. Stopping a stopped server
// does nothing. It fails with [ErrExternal] for an external server, and kills the server
// and fails when ctx ends before the shutdown finished.
func (s *Server) Stop(ctx context.Context) error {
	if s.ext != nil {
		return fmt.Errorf("%w: cannot Stop %s", ErrExternal, s.name)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return s.shutdown(ctx)
}

// Kill crashes the server: SIGKILL to the postmaster and all its processes, without
// shutdown; the next [Server.Start] runs crash recovery. Because the servers run with
// synchronous_commit=off, a crash may lose what was committed in the last fraction of a
// second: a test that needs its commits to survive Kill sets synchronous_commit=on on its
// connection (or starts the set with WithSetting("synchronous_commit", "on")). Kill fails
// with [ErrExternal] for an external server and when the server is not running.
func (s *Server) Kill() error {
	if s.ext != nil {
		return fmt.Errorf("%w: cannot Kill %s", ErrExternal, s.name)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	p, err := s.running("Kill")
	if err != nil {
		return err
	}
	s.killProc(p)
	return nil
}

// Start starts a stopped or killed server again, on the same data directory and port, and
// waits until it accepts connections (a replica: until it accepts them in recovery).
// Starting a running server does nothing. It fails with [ErrExternal] for an external
// server, with [ErrClosed] after [Set.Close], and with the tail of the server's log when it
// does not come up within the start timeout or before ctx ends (for example when another
// process took the port meanwhile).
func (s *Server) Start(ctx context.Context) error {
	if s.ext != nil {
		return fmt.Errorf("%w: cannot Start %s", ErrExternal, s.name)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.set.isClosed() {
		return fmt.Errorf("shardtest: Start %s: %w", s.name, ErrClosed)
	}
	if s.Running() {
		return nil
	}
	return s.launch(ctx)
}

// create makes the server's data directory from the template and starts it on a free port.
func (s *Server) create(tmpl string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// cp -a keeps the owner (postgres, when running as root) and the 0700 mode that
	// postgres insists on.
	if err := runHelper(ctx, s.set.acct, s.set.root, false, "cp", "-a", tmpl, s.dataDir); err != nil {
		return fmt.Errorf("shardtest: %s: copy template data directory: %w", s.name, err)
	}
	return s.launchOnFreePort(context.Background())
}

// usedPorts holds the ports this process has handed out, so that two servers started at
// the same moment cannot be given the same one.
var usedPorts = struct {
	mu sync.Mutex
	m  map[int]bool
}{m: map[int]bool{}}

// freePort returns a loopback TCP port that nothing listens on now and that this process
// has not handed out before. Another process may still take it before the server binds it:
// launchOnFreePort retries then.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return 0, fmt.Errorf("shardtest: find a free port on %s: %w", loopback, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		usedPorts.mu.Lock()
		taken := usedPorts.m[port]
		usedPorts.m[port] = true
		usedPorts.mu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, fmt.Errorf("shardtest: find a free port on %s: only ports already handed out were offered", loopback)
}

// launchOnFreePort starts the server on a newly chosen free port, choosing another when a
// different process took the port first. The caller holds opMu.
func (s *Server) launchOnFreePort(ctx context.Context) error {
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		s.mu.Lock()
		s.port = port
		s.mu.Unlock()
		if err = s.launch(ctx); !errors.Is(err, errPortInUse) {
			return err
		}
	}
	return err
}

// launch runs the postmaster on the server's data directory and port and waits until it is
// ready; on failure it leaves no process behind. The caller holds opMu.
func (s *Server) launch(ctx context.Context) error {
	logPath := s.LogPath()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("shardtest: %s: open log: %w", s.name, err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	if err := s.set.acct.chown(logPath); err != nil {
		return err
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)
	_, standbyErr := os.Stat(filepath.Join(s.dataDir, "standby.signal"))
	standby := standbyErr == nil

	port := s.Port()
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(port), "-k", s.set.root}
	for _, kv := range s.set.opts.settings {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(filepath.Join(s.set.bin, "postgres"), args...)
	cmd.Dir = s.set.root
	cmd.Env = childEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = serverAttr(s.set.acct.cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("shardtest: %s: run %s: %w", s.name, cmd.Path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	// This goroutine reaps the postmaster; it ends when the process does, which Stop,
	// Kill and Close wait for, so it never outlives the Set.
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()

	if err := s.waitReady(ctx, p, standby); err != nil {
		s.killProc(p)
		if b, rerr := readFrom(logPath, logStart); rerr == nil && strings.Contains(b, "Address already in use") {
			return fmt.Errorf("%w: %d (%s)", errPortInUse, port, s.name)
		}
		return err
	}
	return nil
}

// readFrom returns the file at path from offset off on.
func readFrom(path string, off int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

// waitReady polls the server until it answers a query, in recovery if standby is set. It
// fails with the tail of the log when the postmaster exits, when the start timeout passes
// or when ctx ends.
func (s *Server) waitReady(ctx context.Context, p *proc, standby bool) error {
	timeout := s.set.opts.startTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(s.DSN("postgres")), pgdriver.WithTimeout(2*time.Second)))
	defer db.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("shardtest: %s (port %d): postgres exited while starting (%v); log %s:\n%s",
				s.name, s.Port(), p.cmd.ProcessState, s.LogPath(), logTail(s.LogPath()))
		}
		attempt, stop := context.WithTimeout(ctx, 2*time.Second)
		var inRecovery bool
		err := db.QueryRowContext(attempt, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
		stop()
		switch {
		case err == nil && inRecovery == standby:
			return nil
		case err == nil:
			lastErr = fmt.Errorf("pg_is_in_recovery() = %v, want %v", inRecovery, standby)
		default:
			lastErr = err
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			why := fmt.Sprintf("did not accept connections within %v", timeout)
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = fmt.Sprintf("gave up waiting for it to accept connections (%v)", ctx.Err())
			}
			return fmt.Errorf("shardtest: %s (port %d) %s; last error: %v; log %s:\n%s",
				s.name, s.Port(), why, lastErr, s.LogPath(), logTail(s.LogPath()))
		case <-tick.C:
		}
	}
}

// shutdown stops the running postmaster with a fast shutdown (SIGINT), killing it if ctx
// ends first. The caller holds opMu.
func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		// A fast shutdown ends only after every child has exited.
		return nil
	case <-ctx.Done():
		s.killProc(p)
		return fmt.Errorf("shardtest: stop %s: fast shutdown did not finish (%w), so it was killed", s.name, ctx.Err())
	}
}

// killProc sends SIGKILL to the postmaster and its children and waits until the postmaster
// has been reaped and its children are gone, so that a restart does not find the old shared
// memory still attached.
func (s *Server) killProc(p *proc) {
	kids := killTree(p.cmd.Process.Pid)
	<-p.done
	waitGone(kids, 5*time.Second)
}

// Freeze stops the server's processes without ending them (SIGSTOP to the postmaster and
// every backend and auxiliary process): connections stay open, and every statement, and
// every new connection, waits without an answer, as with a server that hangs or a network
// that drops packets. [Server.Thaw] resumes it. Freeze fails with [ErrExternal] for an
// external server and when the server is not running. A test that freezes a server must
// thaw it (t.Cleanup), or the server cannot be stopped at the end.
func (s *Server) Freeze() error {
	return s.signalAll("Freeze", syscall.SIGSTOP)
}

// Thaw resumes a server that [Server.Freeze] stopped (SIGCONT to its processes): statements
// that were waiting get their answers. Thawing a server that is not frozen does nothing. It
// fails with [ErrExternal] for an external server and when the server is not running.
func (s *Server) Thaw() error {
	return s.signalAll("Thaw", syscall.SIGCONT)
}

// running returns the server's running postmaster, or an error naming op when it is not
// running. The caller holds opMu.
func (s *Server) running(op string) (*proc, error) {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if p == nil || p.exited() {
		return nil, fmt.Errorf("shardtest: %s %s: the server is not running", op, s.name)
	}
	return p, nil
}

// signalAll sends sig to the postmaster and its children. The postmaster goes first on
// SIGSTOP (a stopped postmaster forks no new child while the children are listed), and
// last on SIGCONT (its children are running again when it resumes forking).
func (s *Server) signalAll(op string, sig syscall.Signal) error {
	if s.ext != nil {
		return fmt.Errorf("%w: cannot %s %s", ErrExternal, op, s.name)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	p, err := s.running(op)
	if err != nil {
		return err
	}
	pid := p.cmd.Process.Pid
	if sig == syscall.SIGSTOP {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("shardtest: %s %s: %w", op, s.name, err)
		}
	}
	for _, k := range children(pid) {
		_ = syscall.Kill(k, sig) // a child that exited meanwhile needs nothing
	}
	if sig != syscall.SIGSTOP {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("shardtest: %s %s: %w", op, s.name, err)
		}
	}
	return nil
}
