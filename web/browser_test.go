//go:build linux

// The browser tests run where CI runs them (Debian's chromium); built only
// there, so that type-checking the other targets does not compile chromedp.

package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/thingtracker/ttn/datadir"
	"github.com/thingtracker/ttn/httpapi"
	"github.com/thingtracker/ttn/internal/nodetest"
	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/node"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// browser starts a headless Chromium for the test (Debian's chromium,
// installed by .ci/run) and returns its context, bounded by a deadline.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("chromium is not on PATH (apt-get install chromium): the pages are tested in a real browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1100, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The browser lives as long as this context: a bound on the whole test.
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// run runs browser steps, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value, failing the test on
// error.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// within bounds the browser's wait for something on a page.
func within(d time.Duration, steps ...chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		_, err := chromedp.Steps(steps...)(ctx, tab)
		return err
	})
}

func thing(id, title, version, desc string, parents ...topics.Parent) topics.Thing {
	return topics.Thing{ID: id, Title: title, Version: version, Description: desc, Tags: []string{"boat", "test"},
		Licenses: []string{"CC-BY-4.0"}, Parents: parents,
		BillOfMaterials: []topics.BOMItem{{Description: id + ".stl", URL: "https://example.org/" + id + ".stl", Size: 1 << 20,
			SHA256: strings.Repeat("ab", 32)}}}
}

func tracker(t *testing.T, n *node.Node, name, title string) topics.TrackerID {
	t.Helper()
	r, err := n.CreateTracker(context.Background(), topics.TrackerInfo{Name: name, Title: title}, false)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func publish(t *testing.T, n *node.Node, tr topics.TrackerID, things ...topics.Thing) {
	t.Helper()
	if _, err := n.Publish(context.Background(), tr, things, datadir.PublishOptions{AllowUnknownParent: true}); err != nil {
		t.Fatal(err)
	}
}

// TestPages drives the pages of a node on a small live network in a real
// headless Chromium: the live feed, following a tracker from its page, a
// Thing's page with its versions, edit, cross-tracker parent and flag, the
// publish form, and a cross-origin form post refused. With
// TTN_SCREENSHOTS=DIR it saves screenshots of the main pages there.
func TestPages(t *testing.T) {
	ctx := browser(t)
	bg := context.Background()

	// a publishes; b, with the pages, follows a's "parts" tracker.
	a := nodetest.Start(t, nodetest.Config(t))
	parts := tracker(t, a, "parts", "Boat parts")
	originals := tracker(t, a, "originals", "Originals")
	secret := tracker(t, a, "secret", "Not followed")
	publish(t, a, originals, thing("hull", "Original hull", "1.0", "The hull everything starts from."))
	publish(t, a, parts, thing("starter", "Starter part", "1.0", "Already there when b starts."))

	cfg := nodetest.Config(t, a.GossipAddr())
	cfg.HTTP = &httpapi.Config{Addr: "127.0.0.1:0"}
	cfg.Follow = datadir.FollowSet{Trackers: []topics.TrackerID{parts}}
	b := nodetest.Start(t, cfg)
	site := "http://" + b.HTTPAddr()
	wait.For(t, 30*time.Second, func() error {
		if _, err := b.Thing(bg, parts, "starter"); err != nil {
			return errors.New("b has not synced a's tracker yet")
		}
		return nil
	})

	t.Run("the feed shows a Thing published elsewhere without a reload", func(t *testing.T) {
		run(t, ctx, "open the feed", chromedp.Navigate(site+"/"),
			within(20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#live`))), // the SSE feed is open
			chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
				_, err := chromedp.Evaluate[bool](`window.notReloaded = true`)(ctx, tab)
				return err
			}))
		publish(t, a, parts, thing("live-benchy", "Live Benchy", "1.0", "Published while the page was open."))
		run(t, ctx, "wait for the new Thing", within(30*time.Second,
			chromedp.WaitVisible(`//ol[@id="feed"]/li[1]/a[normalize-space()="Live Benchy"]`)))
		if !get(t, ctx, chromedp.Evaluate[bool](`window.notReloaded === true`)) {
			t.Error("the page reloaded: the Thing did not arrive live")
		}
	})

	t.Run("following a tracker from its page starts its history", func(t *testing.T) {
		// b learns of "originals" from a's discovery records.
		wait.For(t, 30*time.Second, func() error {
			ds, err := b.Discovered(bg)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.Tracker == originals {
					return nil
				}
			}
			return errors.New("b has not discovered a's originals tracker")
		})
		page := site + "/trackers/" + originals.String()
		run(t, ctx, "follow", chromedp.Navigate(page),
			within(10*time.Second, chromedp.WaitVisible(`//button[@id="follow" and normalize-space()="Follow this tracker"]`)),
			chromedp.Click(chromedp.CSS(`#follow`)),
			within(10*time.Second, chromedp.WaitVisible(`//p[@class="done" and contains(., "Following tracker")]`)))
		if !b.Followed(originals) {
			t.Fatal("b does not follow the tracker after the form")
		}
		// The history arrives through sync; the page shows it once held.
		wait.For(t, 30*time.Second, func() error {
			if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
				return err
			}
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](
				`[...document.querySelectorAll("ul.things a")].filter(a => a.textContent == "Original hull").length`))
			if err != nil {
				return err
			}
			if n != 1 {
				return errors.New("the tracker page does not list its history yet")
			}
			return nil
		})
	})

	t.Run("a Thing page shows its versions, an edit, a parent on another tracker and a flag", func(t *testing.T) {
		parent := topics.Parent{Tracker: originals, Thing: "hull", Version: "1.0"}
		publish(t, a, parts, thing("remix", "Remixed hull", "1.0", "Derived from the original.", parent))
		publish(t, a, parts, thing("remix", "Remixed hull", "1.0", "Derived from the original; printed at 0.2 mm.", parent)) // an edit
		publish(t, a, parts, thing("remix", "Remixed hull", "2.0", "Thinner walls.", parent))
		wait.For(t, 30*time.Second, func() error {
			th, err := b.Thing(bg, parts, "remix")
			if err != nil || len(th.Versions) != 2 {
				return fmt.Errorf("b holds %v of remix (%v)", th, err)
			}
			return nil
		})
		page := site + "/things/" + parts.String() + "/remix"
		run(t, ctx, "flag it", chromedp.Navigate(page),
			within(10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#flag`))),
			chromedp.SetValue(chromedp.CSS(`select[name="reason"]`), "broken"),
			chromedp.SendKeys(chromedp.CSS(`input[name="note"]`), "walls too thin"),
			chromedp.Click(chromedp.CSS(`#flag`)),
			within(10*time.Second, chromedp.WaitVisible(`//p[@class="done" and contains(., "Flagged as broken")]`)))
		versions := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#versions > li").length`))
		edits := get(t, ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#versions li li")].filter(li => li.textContent.startsWith("edit")).length`))
		graph := get(t, ctx, chromedp.TextContent(chromedp.CSS(`#ancestry`)))
		flags := get(t, ctx, chromedp.Text(chromedp.CSS(`#flags`)))
		heading := get(t, ctx, chromedp.Text(chromedp.CSS(`h1`)))
		if versions != 2 || edits != 1 {
			t.Errorf("the page shows %d versions and %d edits, want 2 and 1", versions, edits)
		}
		if !strings.Contains(graph, "Original hull") || !strings.Contains(graph, "Remixed hull") {
			t.Errorf("the ancestry graph reads %q, want the parent on the other tracker and the Thing", graph)
		}
		if !strings.Contains(flags, "broken") {
			t.Errorf("the flags read %q, want the flag", flags)
		}
		if heading != "Remixed hull" {
			t.Errorf("the heading is %q", heading)
		}
		// The parent's page shows the child: ancestry both ways.
		run(t, ctx, "the parent's page", chromedp.Navigate(site+"/things/"+originals.String()+"/hull"),
			within(10*time.Second, chromedp.WaitVisible(`//*[@id="ancestry"]//*[contains(., "Remixed hull")]`)))
	})

	t.Run("the publish form makes an announcement other nodes receive", func(t *testing.T) {
		mine := tracker(t, b, "workshop", "B's workshop")
		if err := a.Follow(bg, view.FollowSet{Trackers: []topics.TrackerID{mine}}); err != nil {
			t.Fatal(err)
		}
		run(t, ctx, "publish", chromedp.Navigate(site+"/publish"),
			within(10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#publish`))),
			chromedp.SetValue(chromedp.CSS(`select[name="tracker"]`), mine.String()),
			chromedp.SendKeys(chromedp.CSS(`input[name="id"]`), "form-boat"),
			chromedp.SendKeys(chromedp.CSS(`input[name="title"]`), "Boat from the form"),
			chromedp.SendKeys(chromedp.CSS(`input[name="version"]`), "1.0"),
			chromedp.SendKeys(chromedp.CSS(`textarea[name="description"]`), "Typed into a page."),
			chromedp.SendKeys(chromedp.CSS(`input[name="tags"]`), "boat, form"),
			chromedp.SendKeys(chromedp.CSS(`input[placeholder="TRACKER/THING@VERSION"]`), parts.String()+"/remix@2.0"),
			chromedp.Click(chromedp.CSS(`#publish-submit`)),
			within(10*time.Second, chromedp.WaitVisible(`//h1[normalize-space()="Boat from the form"]`)))
		wait.For(t, 30*time.Second, func() error {
			th, err := a.Thing(bg, mine, "form-boat")
			if err != nil {
				return errors.New("a has not received the Thing published from b's page")
			}
			if p := th.Versions[0].Parents; len(p) != 1 || p[0].Thing != "remix" {
				return fmt.Errorf("a holds the Thing with parents %v", p)
			}
			return nil
		})
	})

	t.Run("a cross-origin form post is refused", func(t *testing.T) {
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/act/follow"><input name="tracker" value="%s"><input name="back" value="/"></form><script>document.forms[0].submit()</script>`, site, secret)
		}))
		defer evil.Close()
		run(t, ctx, "the other site's form", chromedp.Navigate(evil.URL),
			within(10*time.Second, chromedp.WaitVisible(`//body[contains(., "cross-origin")]`)))
		body := get(t, ctx, chromedp.Text(chromedp.CSS(`body`)))
		if b.Followed(secret) {
			t.Fatalf("a cross-origin post made b follow a tracker (the page said %q)", body)
		}
	})

	if dir := os.Getenv("TTN_SCREENSHOTS"); dir != "" {
		screenshots(t, ctx, dir, site, map[string]string{
			"feed.png":    "/",
			"tracker.png": "/trackers/" + parts.String(),
			"thing.png":   "/things/" + parts.String() + "/remix",
			"node.png":    "/nodes/" + a.ID.ID,
			"status.png":  "/status",
			"search.png":  "/search?q=hull",
			"publish.png": "/publish",
		})
	}

	t.Run("the pages fit a phone's screen", func(t *testing.T) {
		run(t, ctx, "a phone's viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3)))
		defer run(t, ctx, "back to the desktop", chromedp.ResetViewport())
		for _, path := range []string{"/", "/trackers", "/trackers/" + parts.String(), "/things/" + parts.String() + "/remix",
			"/nodes/" + a.ID.ID, "/search?q=hull", "/discovered", "/status", "/publish"} {
			run(t, ctx, "open "+path, chromedp.Navigate(site+path))
			if w := get(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); w > 0 {
				t.Errorf("%s is %d px wider than a phone's screen", path, w)
			}
		}
		if dir := os.Getenv("TTN_SCREENSHOTS"); dir != "" {
			screenshots(t, ctx, dir, site, map[string]string{"phone-thing.png": "/things/" + parts.String() + "/remix"})
		}
	})

}

// screenshots saves the pages named, whole, as PNG files in dir.
func screenshots(t *testing.T, ctx context.Context, dir, site string, pages map[string]string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, path := range pages {
		run(t, ctx, "open "+path, chromedp.Navigate(site+path))
		img := get(t, ctx, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(dir, file), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
