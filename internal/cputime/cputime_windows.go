package cputime

import (
	"syscall"
	"time"
)

func process() time.Duration {
	var creation, exit, kernel, user syscall.Filetime
	h, err := syscall.GetCurrentProcess()
	if err != nil || syscall.GetProcessTimes(h, &creation, &exit, &kernel, &user) != nil {
		return 0
	}
	// FILETIME durations count 100 ns intervals.
	return time.Duration((int64(kernel.HighDateTime)<<32|int64(kernel.LowDateTime))+(int64(user.HighDateTime)<<32|int64(user.LowDateTime))) * 100
}
