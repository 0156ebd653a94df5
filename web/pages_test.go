package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/web"
)

// pageNode starts a node serving its pages on loopback.
func pageNode(t *testing.T, readOnly bool) (*node.Node, string) {
	cfg := nodetest.Config(t)
	cfg.HTTP = &httpapi.Config{Addr: "127.0.0.1:0"}
	cfg.ReadOnlyPages = readOnly
	n := nodetest.Start(t, cfg)
	return n, "http://" + n.HTTPAddr()
}

// fetch does a request and returns the status and body.
func fetch(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func form(t *testing.T, site, action string, v url.Values) (int, string) {
	req := newRequest(t, http.MethodPost, site+"/act/"+action, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return fetch(t, req)
}

func TestHostCheck(t *testing.T) {
	_, site := pageNode(t, false)
	for host, want := range map[string]int{"": 200, "localhost": 200, "[::1]:7070": 200, "attacker.example": 421, "attacker.example:7070": 421, "127.0.0.1.nip.io": 421} {
		req := newRequest(t, http.MethodGet, site+"/", nil)
		if host != "" {
			req.Host = host
		}
		if code, body := fetch(t, req); code != want {
			t.Errorf("Host %q: %d, want %d (%.100s)", host, code, want, body)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST:80": true, "127.0.0.1": true, "127.8.9.1:1": true, "[::1]": true, "::1": true,
		"": false, "0.0.0.0": false, "192.168.1.2:7070": false, "localhost.attacker.example": false, "[::]:80": false} {
		if got := web.LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestReadOnlyPages(t *testing.T) {
	n, site := pageNode(t, true)
	tr, err := n.CreateTracker(context.Background(), topics.TrackerInfo{Name: "parts"}, false)
	if err != nil {
		t.Fatal(err)
	}
	other := topics.DeriveTrackerID(make([]byte, 36), "elsewhere")
	code, body := fetch(t, newRequest(t, http.MethodGet, site+"/trackers/"+tr.ID.String(), nil))
	if code != 200 || strings.Contains(body, "/act/") {
		t.Errorf("a read-only tracker page: %d, with forms: %v", code, strings.Contains(body, "/act/"))
	}
	if code, body := form(t, site, "follow", url.Values{"tracker": {other.String()}}); code != http.StatusForbidden || !strings.Contains(body, "loopback") {
		t.Errorf("a follow form on read-only pages: %d %.200s", code, body)
	}
	if n.Followed(other) {
		t.Error("a read-only page's form made the node follow a tracker")
	}
	if code, _ := fetch(t, newRequest(t, http.MethodGet, site+"/publish", nil)); code != http.StatusForbidden {
		t.Errorf("the publish page on read-only pages: %d", code)
	}
}

func TestBadFormsChangeNothing(t *testing.T) {
	n, site := pageNode(t, false)
	tr, err := n.CreateTracker(context.Background(), topics.TrackerInfo{Name: "parts"}, false)
	if err != nil {
		t.Fatal(err)
	}
	last := n.Log.Last()
	for _, tc := range []struct {
		action string
		form   url.Values
		reason string
	}{
		{"publish", url.Values{"tracker": {tr.ID.String()}, "id": {"bad\x01id"}, "title": {"T"}, "version": {"1"}}, "control character"},
		{"publish", url.Values{"tracker": {tr.ID.String()}, "id": {"a"}, "title": {"T"}}, "version"},
		{"publish", url.Values{"tracker": {"nope"}, "id": {"a"}, "title": {"T"}, "version": {"1"}}, "tracker"},
		{"publish", url.Values{"tracker": {tr.ID.String()}, "id": {"a"}, "title": {"T"}, "version": {"1"}, "parent": {tr.ID.String() + "/ghost@1"}}, "parent"},
		{"follow", url.Values{}, "name a tracker or a node"},
		{"trust", url.Values{"subject": {"nobody"}, "level": {"trusted"}}, ""},
		{"flag", url.Values{"thing": {"x"}, "reason": {"spam"}}, ""},
	} {
		code, body := form(t, site, tc.action, tc.form)
		if code != http.StatusBadRequest || !strings.Contains(body, `class="error"`) || !strings.Contains(body, tc.reason) {
			t.Errorf("%s %v: %d, want 400 naming %q: %.300s", tc.action, tc.form, code, tc.reason, body)
		}
	}
	if got := n.Log.Last(); got != last {
		t.Errorf("bad forms changed the log: %d → %d", last, got)
	}
}

func TestNotFound(t *testing.T) {
	n, site := pageNode(t, false)
	tr, err := n.CreateTracker(context.Background(), topics.TrackerInfo{Name: "parts"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/things/" + tr.ID.String() + "/nope": "text/html",
		"/no/such/page":                       "text/html",
		"/v1/no/such/endpoint":                "application/json",
		"/trackers/" + topics.DeriveTrackerID(make([]byte, 36), "unseen").String(): "text/html",
	} {
		res, err := http.Get(site + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), want) {
			t.Errorf("%s: %d %s, want 404 %s", path, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
}
