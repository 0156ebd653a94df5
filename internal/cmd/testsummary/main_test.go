package main

import (
	"bytes"
	"strings"
	"testing"
)

// events is a run of two packages as go test -json writes it: a pass, a
// skip for want of root, a failed subtest.
const events = `{"Action":"start","Package":"p/a"}
{"Action":"run","Package":"p/a","Test":"TestA"}
{"Action":"output","Package":"p/a","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p/a","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p/a","Test":"TestA"}
{"Action":"output","Package":"p/a","Test":"TestRoot","Output":"=== RUN   TestRoot\n"}
{"Action":"output","Package":"p/a","Test":"TestRoot","Output":"    a_test.go:9: SKIP: needs root\n"}
{"Action":"output","Package":"p/a","Test":"TestRoot","Output":"--- SKIP: TestRoot (0.00s)\n"}
{"Action":"skip","Package":"p/a","Test":"TestRoot"}
{"Action":"output","Package":"p/a","Output":"PASS\n"}
{"Action":"output","Package":"p/a","Output":"ok  \tp/a\t0.01s\n"}
{"Action":"pass","Package":"p/a"}
{"Action":"output","Package":"p/b","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p/b","Test":"TestB/sub","Output":"=== RUN   TestB/sub\n"}
{"Action":"output","Package":"p/b","Test":"TestB/sub","Output":"    b_test.go:7: boom\n"}
{"Action":"output","Package":"p/b","Test":"TestB/sub","Output":"--- FAIL: TestB/sub (0.00s)\n"}
{"Action":"fail","Package":"p/b","Test":"TestB/sub"}
{"Action":"output","Package":"p/b","Test":"TestB","Output":"--- FAIL: TestB (0.00s)\n"}
{"Action":"fail","Package":"p/b","Test":"TestB"}
{"Action":"output","Package":"p/b","Output":"FAIL\n"}
{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t0.01s\n"}
{"Action":"fail","Package":"p/b"}
`

func TestSummary(t *testing.T) {
	passing := events[:strings.Index(events, `{"Action":"output","Package":"p/b"`)]
	for _, tc := range []struct {
		name, in string
		ci       bool
		ok       bool
		want     []string
	}{
		{"a failure", events, false, false, []string{
			"ok  \tp/a\t0.01s\n",
			"--- FAIL: TestB (0.00s)\n    --- FAIL: TestB/sub (0.00s)\n        b_test.go:7: boom\nFAIL\nFAIL\tp/b\t0.01s\n",
			"tests: 1 passed, 2 failed, 1 skipped; packages: 2, 1 failed\n",
			"  p/a TestRoot: a_test.go:9: SKIP: needs root\n",
		}},
		{"a skip for root, not on CI", passing, false, true, []string{"ok  \tp/a\t0.01s\n", "1 skipped"}},
		{"a skip for root on CI", passing, true, false, []string{"tests skipped for want of what CI provides", "  p/a TestRoot\nFAIL\n"}},
		{"no events", "", false, false, []string{"no test events"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &summary{out: &out, output: map[key][]string{}}
			if err := s.read(strings.NewReader(tc.in)); err != nil {
				t.Fatal(err)
			}
			if got := s.report(tc.ci); got != tc.ok {
				t.Errorf("report = %v, want %v", got, tc.ok)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestCIFixable: the skips of what CI provides are recognised, others not.
func TestCIFixable(t *testing.T) {
	for _, tc := range []struct {
		reason string
		want   bool
	}{
		{"netns_linux_test.go:31: SKIP: the network lab needs root to create network namespaces", true},
		{"SKIP: the network lab needs iproute2 (ip): exec: \"ip\": executable file not found in $PATH", true},
		{"SKIP: cannot create network namespaces here: ip netns add: exit status 1", true},
		{"SKIP: the network lab's routers need iptables (NAT): exec: \"iptables\": executable file not found in $PATH", true},
		{"SKIP: the nats CLI is not on PATH", true},
		{"SKIP: 5,000 announcements", false},
	} {
		if got := ciFixable.MatchString(tc.reason); got != tc.want {
			t.Errorf("ciFixable(%q) = %v, want %v", tc.reason, got, tc.want)
		}
	}
}
