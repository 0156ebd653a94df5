package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

// maxForm bounds a form's body.
const maxForm = 256 << 10

// action does what a form asks and says what it did in a few words.
type action func(r *http.Request) (done string, err error)

// act serves a form: refused unless forms are served; on success the
// browser goes back to the page the form was on (its "back" field), told
// what was done; on failure an error page gives the reason.
func (p *Pages) act(a action) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(code int, reason string) {
			p.render(func(*http.Request) (string, any, error) {
				return "", nil, &pageError{code, reason}
			}).ServeHTTP(w, r)
		}
		if !p.cfg.Actions {
			fail(http.StatusForbidden, "forms act on the node only on a loopback listener")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, "form: "+err.Error())
			return
		}
		done, err := a(r)
		if err != nil {
			code := status(err)
			if code == http.StatusInternalServerError {
				code = http.StatusBadRequest // the node refused what the form asked
			}
			fail(code, err.Error())
			return
		}
		back := r.PostForm.Get("back")
		if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.HasPrefix(back, "/\\") {
			back = "/"
		}
		u, err := url.Parse(back)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		v := u.Query()
		v.Set("done", done)
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
	})
}

// follows reads the tracker or node a follow form names.
func follows(r *http.Request) (view.FollowSet, string, error) {
	var fs view.FollowSet
	if t := r.PostForm.Get("tracker"); t != "" {
		id, err := topics.ParseTrackerID(t)
		if err != nil {
			return fs, "", badRequest(err.Error())
		}
		fs.Trackers = []topics.TrackerID{id}
		return fs, "tracker " + short(id), nil
	}
	if n := r.PostForm.Get("node"); n != "" {
		if _, err := topics.NodeKey(n); err != nil {
			return fs, "", badRequest(err.Error())
		}
		fs.Nodes = []string{n}
		return fs, "node " + short(n), nil
	}
	return fs, "", badRequest("name a tracker or a node")
}

func (p *Pages) follow(r *http.Request) (string, error) {
	fs, what, err := follows(r)
	if err != nil {
		return "", err
	}
	return "Following " + what, p.b.Follow(r.Context(), fs)
}

func (p *Pages) unfollow(r *http.Request) (string, error) {
	fs, what, err := follows(r)
	if err != nil {
		return "", err
	}
	return "No longer following " + what, p.b.Unfollow(r.Context(), fs)
}

// list splits a comma-separated field.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (p *Pages) publish(r *http.Request) (string, error) {
	f := r.PostForm
	tracker, err := topics.ParseTrackerID(f.Get("tracker"))
	if err != nil {
		return "", badRequest("tracker: " + err.Error())
	}
	t := topics.Thing{
		ID: strings.TrimSpace(f.Get("id")), Title: strings.TrimSpace(f.Get("title")), Version: strings.TrimSpace(f.Get("version")),
		Description: strings.ReplaceAll(f.Get("description"), "\r\n", "\n"), URL: strings.TrimSpace(f.Get("url")),
		Tags: list(f.Get("tags")), Licenses: list(f.Get("licenses")),
	}
	if a := strings.TrimSpace(f.Get("author")); a != "" {
		t.Authors = []topics.Person{{Name: a}}
	}
	for _, v := range f["parent"] {
		if v == "" {
			continue
		}
		parent, err := parseParent(v)
		if err != nil {
			return "", badRequest(err.Error())
		}
		t.Parents = append(t.Parents, parent)
	}
	res, err := p.b.Publish(r.Context(), tracker, []topics.Thing{t})
	if err != nil {
		return "", err
	}
	r.PostForm.Set("back", thingURL(tracker, t.ID)) // the new version's page
	if len(res.Published) == 1 && !res.Published[0].New {
		return fmt.Sprintf("%s %s was already published as it is", t.ID, t.Version), nil
	}
	return fmt.Sprintf("Published %s %s", t.ID, t.Version), nil
}

func (p *Pages) trust(r *http.Request) (string, error) {
	f := r.PostForm
	level := topics.TrustLevel(f.Get("level"))
	if err := p.b.Trust(r.Context(), f.Get("subject"), level, strings.TrimSpace(f.Get("fingerprint")), strings.TrimSpace(f.Get("note"))); err != nil {
		return "", err
	}
	return fmt.Sprintf("Trust in %s set to %s", short(f.Get("subject")), level), nil
}

func (p *Pages) flag(r *http.Request) (string, error) {
	f := r.PostForm
	var target topics.FlagTarget
	var err error
	if t := f.Get("tracker"); t != "" {
		if target.Tracker, err = topics.ParseTrackerID(t); err != nil {
			return "", badRequest(err.Error())
		}
	}
	if a := f.Get("announcement"); a != "" {
		if target.Announcement, err = topics.ParseID(a); err != nil {
			return "", badRequest(err.Error())
		}
	}
	target.Thing, target.Node = f.Get("thing"), f.Get("node")
	fl := topics.Flag{Target: target, Reason: topics.FlagReason(f.Get("reason")), Note: strings.TrimSpace(f.Get("note")), Withdraw: f.Get("withdraw") == "1"}
	if err := p.b.Flag(r.Context(), fl); err != nil {
		return "", err
	}
	if fl.Withdraw {
		return "Flag withdrawn", nil
	}
	return "Flagged as " + string(fl.Reason), nil
}

func (p *Pages) block(r *http.Request) (string, error) {
	id, blocked := r.PostForm.Get("node"), r.PostForm.Get("blocked") != "0"
	if err := p.b.Block(r.Context(), []string{id}, blocked); err != nil {
		return "", err
	}
	if blocked {
		return "Blocked " + short(id), nil
	}
	return "Unblocked " + short(id), nil
}

func (p *Pages) dismiss(r *http.Request) (string, error) {
	id := r.PostForm.Get("id")
	if id == "" {
		return "", badRequest("name a tracker or a node to dismiss")
	}
	return "Dismissed " + short(id), p.b.Dismiss(r.Context(), []string{id})
}
