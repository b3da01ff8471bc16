package shardtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// StartReplica starts a streaming hot-standby replica of the server: pg_basebackup -R -X
// stream into a new data directory, started on a new free port, and returns once it
// accepts read-only connections in recovery. The replica belongs to the server's Set and
// is closed with it; Stop, Kill and Start work on it as on any server. It fails with
// [ErrExternal] for an external server, when the server is not running, with [ErrClosed]
// after [Set.Close], and when the backup or the replica's start fails (with the tail of the
// replica's log).
func (s *Server) StartReplica(ctx context.Context) (*Server, error) {
	if s.ext != nil {
		return nil, fmt.Errorf("%w: cannot StartReplica of %s", ErrExternal, s.name)
	}
	if !s.Running() {
		return nil, fmt.Errorf("shardtest: StartReplica of %s: the server is not running; Start it first", s.name)
	}
	set := s.set
	set.mu.Lock()
	if set.closed {
		set.mu.Unlock()
		return nil, fmt.Errorf("shardtest: StartReplica of %s: %w", s.name, ErrClosed)
	}
	set.nreplicas++
	name := s.name + "-replica" + strconv.Itoa(set.nreplicas)
	r := &Server{set: set, name: name, index: s.index, primary: s, host: loopback, dataDir: filepath.Join(set.root, name)}
	// Registered before it exists, so that Close stops it whatever happens next; Close
	// takes opMu and so waits for the setup below to finish.
	r.opMu.Lock()
	defer r.opMu.Unlock()
	set.replicas = append(set.replicas, r)
	set.mu.Unlock()

	err := runHelper(ctx, set.acct, set.root, true, filepath.Join(set.bin, "pg_basebackup"),
		"-h", loopback, "-p", strconv.Itoa(s.Port()), "-U", "postgres", "-D", r.dataDir,
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	if err != nil {
		return nil, fmt.Errorf("shardtest: StartReplica of %s: %w", s.name, err)
	}
	// The backup copied the primary's log; the replica starts its own.
	if err := os.Remove(r.LogPath()); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("shardtest: StartReplica of %s: %w", s.name, err)
	}
	if err := r.launchOnFreePort(ctx); err != nil {
		return nil, fmt.Errorf("shardtest: StartReplica of %s: %w", s.name, err)
	}
	return r, nil
}
