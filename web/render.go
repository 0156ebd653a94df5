package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// assetServer serves the style sheet and the feed's script, cached by the
// browser for an hour.
var assetServer = func() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		files.ServeHTTP(w, r)
	})
}()

var funcs = template.FuncMap{
	"short":      short,
	"size":       size,
	"join":       strings.Join,
	"thingURL":   thingURL,
	"trackerURL": func(t topics.TrackerID) string { return "/trackers/" + t.String() },
	"nodeURL":    func(id string) string { return "/nodes/" + url.PathEscape(id) },
	"add":        func(a, b int) int { return a + b },
	"ago":        ago,
	"snip":       snip,
	"int64":      func(v uint64) int64 { return int64(min(v, 1<<62)) },
	"facet":      facet,
}

// pages are the templates, each the layout with one page's content.
var pages = func() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	m := map[string]*template.Template{}
	for _, name := range names {
		name = strings.TrimPrefix(name, "templates/")
		if name == "layout.html" {
			continue
		}
		m[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name))
	}
	return m
}()

// handler answers a page: the template to render and its data.
type handler func(r *http.Request) (name string, data any, err error)

// pageData is what every page's template gets.
type pageData struct {
	Title   string
	Path    string // of the request, for forms to come back to
	Actions bool   // the forms that act on the node are served
	Search  bool   // the node keeps a search index
	Msg     string // what the last form did
	Error   string
	Page    any
}

// titled is a page's data that names the page.
type titled interface{ title() string }

// render serves a page, or an error page with the failure's status.
func (p *Pages) render(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := pageData{Path: r.URL.RequestURI(), Actions: p.cfg.Actions, Search: p.cfg.Search != nil, Msg: r.URL.Query().Get("done")}
		name, data, err := h(r)
		code := http.StatusOK
		if err != nil {
			code = status(err)
			if code >= 500 {
				p.cfg.Logger.Warn("page failed", "path", r.URL.Path, "err", err)
			}
			name, d.Title, d.Error = "error", http.StatusText(code), oneLine(err.Error())
		} else {
			d.Page = data
			if t, ok := data.(titled); ok {
				d.Title = t.title()
			}
		}
		var buf bytes.Buffer
		if err := pages[name].ExecuteTemplate(&buf, "layout.html", d); err != nil {
			p.cfg.Logger.Error("page template failed", "page", name, "err", err)
			http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		w.Write(buf.Bytes())
	})
}

// oneLine keeps the first line of a reason.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// short abbreviates a long ID for display: its first 6 and last 4
// characters.
func short(s any) string {
	v := fmt.Sprint(s)
	if len(v) <= 14 {
		return v
	}
	return v[:6] + "…" + v[len(v)-4:]
}

// size formats a byte count.
func size(n int64) string {
	switch {
	case n <= 0:
		return ""
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// thingURL is the page of a Thing.
func thingURL(tracker topics.TrackerID, id string) string {
	segs := strings.Split(id, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/things/" + tracker.String() + "/" + strings.Join(segs, "/")
}

// ago tells how long ago an RFC 3339 time was, roughly.
func ago(s string) string {
	t, err := topics.ParseTime(s)
	if err != nil {
		return s
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.Format("2 Jan 2006")
}

// query builds a URL: path, then pairs of names and values, empty values
// left out.
func query(path string, pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			v.Set(pairs[i], pairs[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// snip cuts a long text for a list.
func snip(s string) string {
	if r := []rune(s); len(r) > 240 {
		return string(r[:239]) + "…"
	}
	return s
}

// facetView is one facet of the search page: its values, each a link that
// narrows the search to it (or widens it again, when on).
type facetView struct {
	Label  string
	Counts []facetLink
}

type facetLink struct {
	view.FacetCount
	Href string
	On   bool
}

func facet(label, param string, counts []view.FacetCount, q view.SearchQuery) facetView {
	cur := map[string]string{"licence": q.Licence, "tag": q.Tag, "author": q.Author, "trust": q.Trust}
	if !q.Tracker.IsZero() {
		cur["tracker"] = q.Tracker.String()
	}
	f := facetView{Label: label}
	for _, c := range counts {
		on := strings.EqualFold(cur[param], c.Value)
		pairs := []string{"q", q.Text}
		for _, name := range []string{"licence", "tag", "author", "tracker", "trust"} {
			v := cur[name]
			if name == param {
				v = c.Value
				if on {
					v = ""
				}
			}
			pairs = append(pairs, name, v)
		}
		if q.Flagged {
			pairs = append(pairs, "flagged", "1")
		}
		if c.Name == "" && (param == "author" || param == "tracker") {
			c.Name = short(c.Value)
		}
		f.Counts = append(f.Counts, facetLink{FacetCount: c, Href: query("/search", pairs...), On: on})
	}
	return f
}
