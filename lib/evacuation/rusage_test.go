package evacuation_test

import (
	"syscall"
	"time"
)

type rusage syscall.Rusage

func getrusage(ru *rusage) error {
	return syscall.Getrusage(syscall.RUSAGE_SELF, (*syscall.Rusage)(ru))
}

func (ru *rusage) total() time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
