// Command testsummary reads `go test -json` on stdin and prints what `go
// test` without -v prints (each package's ok or FAIL line, the output of the
// tests that failed, and of a package that failed outside its tests), then a
// summary line and the tests that skipped, with their reasons.
//
// It exits 1 if a test or a package failed, or if the input held no test
// event at all; with CI=true in the environment, also if a test skipped for
// want of something CI could have provided (root, network namespaces,
// iproute2, iptables, a tool on PATH): on CI such a skip hides a test that never ran.
//
//	go test -race -json ./... 2>&1 | go run ./internal/cmd/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// ciFixable matches the skip reasons CI could have removed: it runs as
// root, creates network namespaces and installs its tools (.ci/run):
// iproute2 and iptables for internal/netlab.
var ciFixable = regexp.MustCompile(`(?i)\broot\b|namespace|iproute2|\biptables\b|\bnot on PATH\b|\btmpfs\b`)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type key struct{ pkg, test string }

// skip is one skipped test and why.
type skip struct {
	pkg, test, reason string
}

type summary struct {
	out                           io.Writer
	output                        map[key][]string // lines of tests and packages still running
	passed, failed, skipped, pkgs int
	failedPkgs                    int
	skips                         []skip
	events                        int
}

func main() {
	s := &summary{out: os.Stdout, output: map[key][]string{}}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	if !s.report(os.Getenv("CI") == "true") {
		os.Exit(1)
	}
}

// read consumes the event stream; lines that are not events (the go
// command's own messages) are printed as they are.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(s.out, "%s\n", line)
			continue
		}
		s.events++
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) handle(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output", "build-output":
		if e.Test == "" && isPackageResult(e.Output) {
			if strings.HasPrefix(e.Output, "FAIL\t") {
				// What the package printed outside its tests: a panic, a
				// leak check, its "FAIL".
				for _, l := range s.output[k] {
					fmt.Fprint(s.out, l)
				}
				delete(s.output, k)
			}
			fmt.Fprint(s.out, e.Output) // go test's own line for the package
			return
		}
		s.output[k] = append(s.output[k], e.Output)
	case "pass":
		if e.Test != "" {
			s.passed++
		} else {
			s.pkgs++
		}
		delete(s.output, k)
	case "skip":
		if e.Test == "" {
			delete(s.output, k) // a package without tests
			return
		}
		s.skipped++
		s.skips = append(s.skips, skip{e.Package, e.Test, reason(s.output[k])})
		delete(s.output, k)
	case "fail":
		if e.Test == "" {
			s.pkgs++
			s.failedPkgs++
			delete(s.output, k) // printed before the package's FAIL line
			return
		}
		s.failed++
		block := failure(e.Test, s.output[k])
		delete(s.output, k)
		if i := strings.LastIndex(e.Test, "/"); i >= 0 {
			// A subtest's failure is printed within its parent's, indented,
			// as go test prints it.
			parent := key{e.Package, e.Test[:i]}
			for _, l := range block {
				s.output[parent] = append(s.output[parent], "    "+l)
			}
			return
		}
		for _, l := range block {
			fmt.Fprint(s.out, l)
		}
	}
}

// failure is a failed test's output as go test prints it: its "--- FAIL"
// line, then what it logged, without -json's framing lines.
func failure(test string, lines []string) []string {
	var head, rest []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "=== "):
		case strings.HasPrefix(l, "--- FAIL: "+test+" "):
			head = append(head, l)
		default:
			rest = append(rest, l)
		}
	}
	return append(head, rest...)
}

// isPackageResult reports whether a package-level line is one go test
// prints without -v: "ok", "FAIL" or "?" for the package.
func isPackageResult(l string) bool {
	return strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "FAIL\t") || strings.HasPrefix(l, "?   \t")
}

// reason is a skipped test's message: its output but for the framing lines.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

// report prints the summary and the skips; it returns whether the run
// passes.
func (s *summary) report(ci bool) bool {
	fmt.Fprintf(s.out, "\ntests: %d passed, %d failed, %d skipped; packages: %d, %d failed\n",
		s.passed, s.failed, s.skipped, s.pkgs, s.failedPkgs)
	sort.Slice(s.skips, func(i, j int) bool {
		return s.skips[i].pkg+" "+s.skips[i].test < s.skips[j].pkg+" "+s.skips[j].test
	})
	var fixable []skip
	if len(s.skips) > 0 {
		fmt.Fprintln(s.out, "skipped:")
	}
	for _, sk := range s.skips {
		fmt.Fprintf(s.out, "  %s %s: %s\n", sk.pkg, sk.test, sk.reason)
		if ciFixable.MatchString(sk.reason) {
			fixable = append(fixable, sk)
		}
	}
	ok := s.failed == 0 && s.failedPkgs == 0
	if s.events == 0 {
		fmt.Fprintln(s.out, "testsummary: no test events in the input")
		ok = false
	}
	if ci && len(fixable) > 0 {
		fmt.Fprintf(s.out, "FAIL: %d tests skipped for want of what CI provides (root, network namespaces, its tools):\n", len(fixable))
		for _, sk := range fixable {
			fmt.Fprintf(s.out, "  %s %s\n", sk.pkg, sk.test)
		}
		ok = false
	}
	if !ok {
		fmt.Fprintln(s.out, "FAIL") // go test's last line when anything failed
	}
	return ok
}
