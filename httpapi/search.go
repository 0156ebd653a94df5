package httpapi

import (
	"net/http"

	"github.com/thingtracker/ttn/view"
)

// search answers GET /v1/search: a full-text search with facets (see
// view.SearchQuery for each parameter).
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	var q view.SearchQuery
	var err error
	for _, p := range []struct {
		name string
		dst  *string
	}{{"text", &q.Text}, {"licence", &q.Licence}, {"tag", &q.Tag}, {"author", &q.Author}, {"trust", &q.Trust}} {
		if *p.dst, err = one(r, p.name); err != nil {
			return err
		}
	}
	if t, err := one(r, "tracker"); err != nil {
		return err
	} else if t != "" {
		if q.Tracker, err = trackerParam(t); err != nil {
			return err
		}
	}
	from, err := number(r, "from", 0, view.MaxSearchFrom)
	if err != nil {
		return err
	}
	limit, err := number(r, "limit", 0, view.MaxSearchLimit)
	if err != nil {
		return err
	}
	q.From, q.Limit = int(from), int(limit)
	if q.Flagged, err = boolean(r, "flagged"); err != nil {
		return err
	}
	if err := q.Check(); err != nil {
		return badRequest("%v", err)
	}
	res, err := s.b.Search(r.Context(), q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}
