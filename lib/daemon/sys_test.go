package daemon_test

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func getsid(pid int) (int, error) { return unix.Getsid(pid) }
func killPid(pid int) error       { return syscall.Kill(pid, syscall.SIGKILL) }
