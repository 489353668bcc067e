//go:build !unix

package window_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
