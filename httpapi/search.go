package httpapi

import (
	"net/http"

	"github.com/thingtracker/ttn/view"
)

// search answers GET /v1/search: a full-text search with facets (see
// view.SearchQuery for each parameter).
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	var q view.SearchQuery
	if err := strParams(r, map[string]*string{"text": &q.Text, "licence": &q.Licence, "tag": &q.Tag, "author": &q.Author, "trust": &q.Trust}); err != nil {
		return err
	}
	if err := trackerOpt(r, &q.Tracker); err != nil {
		return err
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
