//go:build linux

package netlab

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Prefix starts the name of every namespace a lab makes.
const Prefix = "ttnt-"

// nsName is a lab's namespace name: ttnt-PID-RAND-NAME.
var nsName = regexp.MustCompile(`^ttnt-(\d+)-[0-9a-f]+-[\w-]+$`)

// hostName is what New accepts as a host's name.
var hostName = regexp.MustCompile(`^[A-Za-z0-9][\w-]*$`)

// Lab is a set of hosts (network namespaces) and the bridges that join
// them, which live in a namespace of their own.
type Lab struct {
	t     testing.TB
	tag   string   // PID-RAND
	sw    string   // the namespace of the bridges
	ns    []string // every namespace made, in order
	nbr   int      // bridges made: br0, br1, …
	nport int      // bridge ports made: p0, p1, …
}

// New makes an empty lab, removed with all it holds when the test ends.
// It skips the test, saying why, unless it runs as root with iproute2 and
// can make namespaces.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIP: the network lab needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: the network lab needs iproute2 (ip): " + err.Error())
	}
	RemoveStale()
	b := make([]byte, 3)
	rand.Read(b)
	l := &Lab{t: t, tag: fmt.Sprintf("%d-%x", os.Getpid(), b)}
	t.Cleanup(l.destroy)
	l.sw = l.name("sw")
	if err := run("ip", "netns", "add", l.sw); err != nil {
		t.Skip("SKIP: cannot create network namespaces here: " + err.Error())
	}
	l.ns = append(l.ns, l.sw)
	return l
}

// RemoveStale deletes the namespaces left by labs whose process is gone,
// and returns their names.
func RemoveStale() []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var removed []string
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		m := nsName.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			if exec.Command("ip", "netns", "del", fields[0]).Run() == nil {
				removed = append(removed, fields[0])
			}
		}
	}
	return removed
}

func (l *Lab) name(s string) string { return Prefix + l.tag + "-" + s }

// destroy removes the lab's namespaces, last made first; their interfaces
// go with them.
func (l *Lab) destroy() {
	for i := len(l.ns) - 1; i >= 0; i-- {
		exec.Command("ip", "netns", "del", l.ns[i]).Run()
	}
	l.ns = nil
}

// must runs each command, failing the test at the first that fails.
func (l *Lab) must(cmds ...[]string) {
	l.t.Helper()
	for _, c := range cmds {
		if err := run(c...); err != nil {
			l.t.Fatal(err)
		}
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Bridge is a switch: the hosts attached to it share a link.
type Bridge struct {
	l   *Lab
	dev string
}

// Bridge makes a bridge.
func (l *Lab) Bridge() *Bridge {
	l.t.Helper()
	b := &Bridge{l: l, dev: fmt.Sprintf("br%d", l.nbr)}
	l.nbr++
	l.must(
		[]string{"ip", "-n", l.sw, "link", "add", b.dev, "type", "bridge"},
		[]string{"ip", "-n", l.sw, "link", "set", b.dev, "up"},
	)
	return b
}

// Trunk joins two bridges by a link that can be taken down: a network
// that can be partitioned.
func (l *Lab) Trunk(a, b *Bridge) *Link {
	l.t.Helper()
	pa, pb := l.port(), l.port()
	l.must(
		[]string{"ip", "-n", l.sw, "link", "add", pa, "type", "veth", "peer", "name", pb},
		[]string{"ip", "-n", l.sw, "link", "set", pa, "master", a.dev},
		[]string{"ip", "-n", l.sw, "link", "set", pb, "master", b.dev},
		[]string{"ip", "-n", l.sw, "link", "set", pb, "up"},
		[]string{"ip", "-n", l.sw, "link", "set", pa, "up"},
	)
	return &Link{l: l, ns: l.sw, dev: pa}
}

func (l *Lab) port() string {
	l.nport++
	return fmt.Sprintf("p%d", l.nport-1)
}

// Link is one end of a virtual cable.
type Link struct {
	l       *Lab
	ns, dev string
}

// Set takes the link up or down.
func (k *Link) Set(up bool) {
	k.l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	k.l.must([]string{"ip", "-n", k.ns, "link", "set", k.dev, state})
}

// Host is a network namespace: a machine of its own, with loopback up
// and the interfaces Attach gives it.
type Host struct {
	l     *Lab
	name  string
	ns    string
	nics  int          // interfaces: eth0, eth1, …
	addrs []netip.Addr // in the order attached
}

// Host makes a host named name (letters, digits, - and _).
func (l *Lab) Host(name string) *Host {
	l.t.Helper()
	if !hostName.MatchString(name) {
		l.t.Fatalf("netlab: host name %q: want letters, digits, - and _", name)
	}
	h := &Host{l: l, name: name, ns: l.name(name)}
	l.must([]string{"ip", "netns", "add", h.ns})
	l.ns = append(l.ns, h.ns)
	l.must([]string{"ip", "-n", h.ns, "link", "set", "lo", "up"})
	return h
}

// Name returns the name the host was made with.
func (h *Host) Name() string { return h.name }

// Namespace returns the host's network namespace, as ip netns names it.
func (h *Host) Namespace() string { return h.ns }

// Addr returns the host's first address (that of eth0).
func (h *Host) Addr() string {
	if len(h.addrs) == 0 {
		return ""
	}
	return h.addrs[0].String()
}

// Attach gives h a new interface (eth0, then eth1, …) with the address
// prefix (e.g. "10.213.0.1/24"), plugged into b, and returns it, up.
func (h *Host) Attach(b *Bridge, prefix string) *Link {
	h.l.t.Helper()
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		h.l.t.Fatalf("netlab: %s: %v", h.name, err)
	}
	dev, port := fmt.Sprintf("eth%d", h.nics), h.l.port()
	h.nics++
	h.l.must(
		[]string{"ip", "-n", h.ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", h.l.sw},
		[]string{"ip", "-n", h.ns, "addr", "add", p.String(), "dev", dev},
		[]string{"ip", "-n", h.l.sw, "link", "set", port, "master", b.dev},
		[]string{"ip", "-n", h.l.sw, "link", "set", port, "up"},
		[]string{"ip", "-n", h.ns, "link", "set", dev, "up"},
	)
	h.addrs = append(h.addrs, p.Addr())
	return &Link{l: h.l, ns: h.ns, dev: dev}
}

// AddAddrs gives h's interface k (eth<k>) more addresses (prefixes such as
// "10.77.1.5/16"), all at once.
func (h *Host) AddAddrs(k int, prefixes ...string) {
	h.l.t.Helper()
	var batch strings.Builder
	for _, p := range prefixes {
		if _, err := netip.ParsePrefix(p); err != nil {
			h.l.t.Fatalf("netlab: %s: %v", h.name, err)
		}
		fmt.Fprintf(&batch, "addr add %s dev eth%d\n", p, k)
	}
	cmd := exec.Command("ip", "-n", h.ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		h.l.t.Fatalf("netlab: on %s: ip -batch: %v: %s", h.name, err, strings.TrimSpace(string(out)))
	}
}

// Route sends what h sends beyond its own links through the gateway gw,
// from h's first address, as a DHCP-configured host's default route does.
func (h *Host) Route(gw string) {
	h.l.t.Helper()
	route := []string{"ip", "-n", h.ns, "route", "add", "default", "via", gw}
	if a := h.Addr(); a != "" {
		route = append(route, "src", a)
	}
	h.l.must(route)
}

// Command returns a command that runs name with args on h (through ip
// netns exec, which execs it: the process's PID is the command's).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// Run runs a command on h and returns its output, failing the test if it
// fails.
func (h *Host) Run(name string, args ...string) string {
	h.l.t.Helper()
	out, err := h.Command(name, args...).CombinedOutput()
	if err != nil {
		h.l.t.Fatalf("netlab: on %s: %s %s: %v: %s", h.name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out)
}

// NAT is how a router maps the addresses and ports of its LAN's
// connections onto its WAN address.
type NAT int

const (
	// PortPreserving keeps a connection's source port when it is free
	// (iptables MASQUERADE): a LAN address and port map to the same WAN
	// port whatever the destination, so two peers that learn each other's
	// mapped address from a third can punch a hole (most home routers).
	PortPreserving NAT = iota
	// Symmetric picks a random WAN port for each new connection
	// (MASQUERADE --random): the port a third party observes is not the
	// one a peer would have to reach, so hole punching fails and only a
	// relay gets through.
	Symmetric
)

func (n NAT) String() string {
	switch n {
	case PortPreserving:
		return "port-preserving"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NAT(%d)", int(n))
}

// Router is a home router: a host with a WAN interface (eth0) and a LAN
// interface (eth1).
type Router struct {
	*Host
	nat NAT
}

// Router makes a home router named name, its WAN interface on wan with
// the address wanPrefix and its LAN interface on lan with lanPrefix. It
// forwards between them, rewriting the source of what leaves on the WAN
// side to its WAN address as nat says, and drops what arrives on the WAN
// side that belongs to no connection from the LAN. Hosts on lan use it
// with Route(its LAN address). It skips the test, saying why, without
// iptables.
func (l *Lab) Router(name string, wan *Bridge, wanPrefix string, lan *Bridge, lanPrefix string, nat NAT) *Router {
	l.t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		l.t.Skip("SKIP: the network lab's routers need iptables (NAT): " + err.Error())
	}
	r := &Router{Host: l.Host(name), nat: nat}
	r.Attach(wan, wanPrefix)
	r.Attach(lan, lanPrefix)
	masquerade := []string{"-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"}
	if nat == Symmetric {
		masquerade = append(masquerade, "--random")
	}
	r.Run("sh", "-c", "echo 1 >/proc/sys/net/ipv4/ip_forward") // net.ipv4.ip_forward=1, without procps
	// A Linux host answers a packet for a port it does not listen on
	// with a TCP reset or an ICMP port unreachable, which would tear down
	// the mapping a hole punch has just made on the other side; a home
	// router drops it.
	for _, rule := range [][]string{
		masquerade,
		{"-A", "INPUT", "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "eth0", "-j", "DROP"},
		{"-A", "FORWARD", "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "eth0", "-j", "DROP"},
	} {
		r.iptables(rule...)
	}
	return r
}

// NAT returns how the router maps ports.
func (r *Router) NAT() NAT { return r.nat }

// iptables runs iptables on the router, waiting for the xtables lock,
// which every namespace shares.
func (r *Router) iptables(args ...string) string {
	r.l.t.Helper()
	return r.Run("iptables", append([]string{"-w", "5"}, args...)...)
}

// CountFrom starts counting the packets the router forwards from src (an
// address on its WAN side) into its LAN, and returns a function that
// reads the count. Such packets prove a direct path: the router forwards
// only what belongs to a connection from its LAN.
func (r *Router) CountFrom(src string) func() uint64 {
	r.l.t.Helper()
	a, err := netip.ParseAddr(src)
	if err != nil {
		r.l.t.Fatalf("netlab: %s: %v", r.name, err)
	}
	// A rule without a target only counts.
	r.iptables("-I", "FORWARD", "1", "-i", "eth0", "-s", a.String())
	line := regexp.MustCompile(`(?m)^-A FORWARD -s ` + regexp.QuoteMeta(a.String()) + `/32 -i eth0 -c (\d+) \d+$`)
	return func() uint64 {
		r.l.t.Helper()
		m := line.FindStringSubmatch(r.iptables("-S", "FORWARD", "-v"))
		if m == nil {
			r.l.t.Fatalf("netlab: %s: the counter of packets from %s is gone", r.name, src)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
}
