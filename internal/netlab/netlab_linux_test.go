//go:build linux

package netlab

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the lab's UDP helpers, run on its hosts:
// NETLAB_HELPER=echo answers each datagram with the address it came from;
// NETLAB_HELPER=probe sends one from port 7601 to each argument and prints
// the answers, one a line.
func TestMain(m *testing.M) {
	switch os.Getenv("NETLAB_HELPER") {
	case "":
		os.Exit(m.Run())
	case "echo":
		echo()
	case "probe":
		probe(os.Args[1:])
	}
	os.Exit(0)
}

func echo() {
	c, err := net.ListenPacket("udp4", ":7000")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ready")
	buf := make([]byte, 64)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo([]byte(from.String()), from)
	}
}

func probe(servers []string) {
	c, err := net.ListenPacket("udp4", ":7601")
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 64)
	for _, s := range servers {
		to, err := net.ResolveUDPAddr("udp4", s)
		if err != nil {
			fmt.Println(err)
			return
		}
		// Resent every 200 ms, for 5 s: a datagram may be lost.
		answer := "no answer from " + s
		for range 25 {
			c.WriteTo([]byte("?"), to)
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, from, err := c.ReadFrom(buf)
			if err == nil && from.String() == to.String() {
				answer = string(buf[:n])
				break
			}
		}
		fmt.Println(answer)
	}
}

// helper starts the test binary as a helper on h.
func helper(t *testing.T, h *Host, mode string, args ...string) *bufio.Scanner {
	t.Helper()
	cmd := h.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "NETLAB_HELPER="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return bufio.NewScanner(out)
}

// line reads the helper's next line, within a deadline.
func line(t *testing.T, sc *bufio.Scanner) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		if sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	select {
	case l, ok := <-got:
		if !ok {
			t.Fatal("the helper exited")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("the helper said nothing for 10s")
	}
	return ""
}

// TestRouters: two servers on the internet see a host behind a
// port-preserving router at its router's address and its own port, both
// the same; they see a host behind a symmetric router at two other ports.
func TestRouters(t *testing.T) {
	l := New(t)
	internet := l.Bridge()
	var servers []string
	for i, name := range []string{"s1", "s2"} {
		h := l.Host(name)
		h.Attach(internet, fmt.Sprintf("11.0.0.%d/24", 10+i))
		if sc := helper(t, h, "echo"); line(t, sc) != "ready" {
			t.Fatalf("%s's echo did not start", name)
		}
		servers = append(servers, fmt.Sprintf("11.0.0.%d:7000", 10+i))
	}
	for i, nat := range []NAT{PortPreserving, Symmetric} {
		lan := l.Bridge()
		r := l.Router(fmt.Sprintf("r%d", i), internet, fmt.Sprintf("11.0.0.%d/24", 21+i), lan, fmt.Sprintf("192.168.%d.1/24", i+1), nat)
		h := l.Host(fmt.Sprintf("home%d", i))
		h.Attach(lan, fmt.Sprintf("192.168.%d.2/24", i+1))
		h.Route(fmt.Sprintf("192.168.%d.1", i+1))

		sc := helper(t, h, "probe", servers...)
		seen := []string{line(t, sc), line(t, sc)}
		mapped := r.Addr() + ":7601"
		switch nat {
		case PortPreserving:
			if seen[0] != mapped || seen[1] != mapped {
				t.Errorf("behind a %v router, the servers saw %v, want %s twice", nat, seen, mapped)
			}
		case Symmetric:
			if !strings.HasPrefix(seen[0], r.Addr()+":") || !strings.HasPrefix(seen[1], r.Addr()+":") || seen[0] == seen[1] || seen[0] == mapped {
				t.Errorf("behind a %v router, the servers saw %v, want two ports of %s, neither 7601", nat, seen, r.Addr())
			}
		}
		t.Logf("behind a %v router, the servers saw %v", nat, seen)
	}
}
