package ttn

import (
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// document is a TTN tracker document as Export writes it: the members in
// the specification's order, with the names of its schema.json.
type document struct {
	ID             string              `json:"id"`
	Title          string              `json:"title,omitempty"`
	URL            string              `json:"url,omitempty"`
	Description    string              `json:"description,omitempty"`
	Version        jsontext.Value      `json:"version,omitempty"`
	Updated        string              `json:"updated,omitempty"`
	ThingsCount    int                 `json:"thingsCount"`
	TrackersCount  int                 `json:"trackersCount"`
	TraversalDepth float64             `json:"trackersTraversalDepth,omitzero"`
	Maintainers    []topics.Person     `json:"maintainers,omitempty"`
	Things         []topics.Thing      `json:"things"`
	ThingsCache    *topics.ThingsCache `json:"thingsCache,omitempty"`
	Trackers       []topics.TrackerRef `json:"trackers,omitempty"`
	Ext            topics.Extensions   `json:",embed"`
}

// schemaInstruction is topics.Instruction under schema.json's name for its
// images ("images", where the js-schema says "imageUrls").
type schemaInstruction struct {
	Step      float64           `json:"step,omitzero"`
	Text      string            `json:"text,omitempty"`
	ImageURLs []string          `json:"images,omitempty"`
	Ext       topics.Extensions `json:",embed"`
}

var exportOptions = json.JoinOptions(
	json.Deterministic(true),
	json.WithMarshalers(json.MarshalToFunc(func(enc *jsontext.Encoder, in topics.Instruction) error {
		return json.MarshalEncode(enc, schemaInstruction(in))
	})),
)

// Export writes a TTN tracker document: the tracker described by info with
// its Things, in the form of the specification's schema.json (thingsCount
// and trackersCount derived; a numeric version as a number, as schema.json
// wants, any other as the string the js-schema allows). What Export writes,
// ParseDocument reads back to the same info and Things.
func Export(info topics.TrackerInfo, things []topics.Thing) ([]byte, error) {
	d := document{
		ID: info.Name, Title: info.Title, URL: info.URL, Description: info.Description,
		Updated: info.Updated, ThingsCount: len(things), TrackersCount: len(info.Trackers),
		TraversalDepth: info.TraversalDepth, Maintainers: info.Maintainers, Things: things,
		ThingsCache: info.ThingsCache, Trackers: info.Trackers, Ext: info.Ext,
	}
	var err error
	if v := info.Version; v != "" {
		if _, perr := strconv.ParseFloat(v, 64); perr == nil && jsontext.Value(v).IsValid() {
			d.Version = jsontext.Value(v) // its literal text, as imported
		} else if d.Version, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(d, exportOptions)
}
