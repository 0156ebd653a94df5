//go:build !unix && !windows

package flags

import "os"

// StopSignals stop a command cleanly: os.Interrupt is the one signal every
// OS has.
var StopSignals = []os.Signal{os.Interrupt}
