//go:build linux

package shardtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// serverAttr returns the process attributes of a postmaster: its own process group, so that
// a Ctrl-C meant for the test binary does not reach it directly, and a parent-death signal,
// so that a crashed test binary takes its servers with it (SIGQUIT is PostgreSQL's
// immediate shutdown).
func serverAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT, Credential: cred}
}

// helperAttr returns the process attributes of initdb, pg_basebackup and cp.
func helperAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// children returns the pids of the live processes whose parent is ppid. PostgreSQL makes
// each of its children a process-group leader of its own (setsid), so they must be found by
// parent, not by group.
func children(ppid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, parent, ok := procStat(pid); ok && parent == ppid && state != "Z" && state != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether process pid exists and is not a zombie. Zombies count as gone
// because whoever reaps orphans here may be slow to, and a zombie no longer holds
// PostgreSQL's shared memory.
func alive(pid int) bool {
	if state, _, ok := procStat(pid); ok {
		return state != "Z" && state != "X"
	}
	return processAlive(pid)
}

// procStat returns the state and parent pid of process pid from /proc/pid/stat.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, false
	}
	// The command name is in parentheses and may contain spaces; fields follow the last ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}
