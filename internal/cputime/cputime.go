// Package cputime reads the CPU time the process has used, for benchmarks that report CPU
// time per record beside elapsed time: on a machine whose other load varies, CPU time varies
// far less than elapsed time does.
package cputime

import "time"

// Used returns the CPU time (user and system) the process has used so far; ok is false where
// the system does not tell.
func Used() (d time.Duration, ok bool) { return used() }
