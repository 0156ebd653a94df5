// Package hostport parses the HOST:PORT addresses the node's listeners take
// (memberlist, NATS, HTTP).
package hostport

import (
	"fmt"
	"net"
	"strconv"
)

// Split splits hp into its host and a port number in 0..65535. Its errors
// quote hp.
func Split(hp string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want HOST:PORT", hp)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", hp)
	}
	return host, port, nil
}
