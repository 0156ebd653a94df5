// Package cputime tells how much CPU time this process has used, for the
// benchmarks that report a cost per operation.
package cputime

import "time"

// Process returns the CPU time this process has used so far, user and
// system together.
func Process() time.Duration { return process() }
