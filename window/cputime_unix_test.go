//go:build unix

package window_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process used so far (user and system), which a busy
// machine's other load does not inflate as it does elapsed time; ok is false where the
// system does not tell.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
