package localcluster

import "syscall"

// sysProcAttr puts a container process in its own process group, so that a Ctrl-C in the
// terminal reaches the harness (which stops it in order) and not the process directly, and
// kills it if the harness dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
