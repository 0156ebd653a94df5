//go:build unix

package flags

import (
	"os"
	"syscall"
)

// StopSignals stop a command cleanly (a node leaves the network and closes
// its log): SIGINT (Ctrl-C) and SIGTERM (kill, systemd, docker stop).
var StopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
