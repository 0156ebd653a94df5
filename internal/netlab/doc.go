// Package netlab builds small networks out of Linux network namespaces for
// the process-level tests: hosts, the bridges that join them, and home
// routers that translate addresses (NAT) and drop what nobody asked for,
// as a home router does.
//
// A test makes a Lab, adds bridges and hosts, attaches hosts to bridges
// with addresses of its choice, and starts processes on a host with
// Host.Command. Everything is removed when the test ends (t.Cleanup).
// Namespaces are named ttnt-PID-RAND-NAME: a crashed run's are removed by
// the next one (RemoveStale).
//
// It needs Linux, root and iproute2 (and iptables for routers); without
// them the test is skipped with a message saying so, starting "SKIP:". On
// CI such a skip is a failure (internal/cmd/testsummary).
//
// Each call runs ip or iptables and fails the test if it fails; none may
// be called concurrently on one Lab with another that changes it.
package netlab
