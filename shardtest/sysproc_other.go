//go:build unix && !linux

package shardtest

import "syscall"

// serverAttr returns the process attributes of a postmaster: its own process group, so that
// a Ctrl-C meant for the test binary does not reach it directly. Without Linux's
// parent-death signal, a crashed test binary leaves its servers running until the next
// Start removes them.
func serverAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

// helperAttr returns the process attributes of initdb, pg_basebackup and cp.
func helperAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}

// children returns nil: finding a process's children takes /proc, which only Linux has
// here. Killed servers' children then exit by themselves on noticing the postmaster gone.
func children(ppid int) []int { return nil }

// alive reports whether process pid exists.
func alive(pid int) bool { return processAlive(pid) }
