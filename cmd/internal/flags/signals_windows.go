package flags

import (
	"os"
	"syscall"
)

// StopSignals stop a command cleanly (a node leaves the network and closes
// its log). Windows has no signals; os/signal turns console events into
// them:
//   - Ctrl-C and Ctrl-Break arrive as os.Interrupt, and the process does not
//     exit by itself while it is notified of them.
//   - Closing the console window, logging off and shutting down
//     (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT) arrive as
//     syscall.SIGTERM; Windows ends the process anyway a few seconds later
//     (5 s for a closed console), so the leave must be quick. The log loses
//     nothing acknowledged either way: every append is synced before it is
//     acknowledged.
//
// A Windows service's stop request is not a console event and reaches no
// signal: running the node as a service needs golang.org/x/sys/windows/svc
// (not done; the README suggests a scheduled task or a service wrapper).
var StopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
