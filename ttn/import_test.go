package ttn

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// specExample is the TTN specification's own example tracker, as written by
// its authors (see ../internal/ttnschema/spec/README.md).
const specExample = "../internal/ttnschema/spec/example-tracker.json"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, b []byte) *Document {
	t.Helper()
	doc, err := ParseDocument(b)
	if err != nil {
		t.Fatalf("ParseDocument: %v", err)
	}
	return doc
}

// canon returns v canonicalized (RFC 8785), so values compare by meaning.
func canon(v jsontext.Value) string {
	c := v.Clone()
	if err := c.Canonicalize(); err != nil {
		if err := c.Compact(); err != nil {
			return string(v)
		}
	}
	return string(c)
}

// at returns list[i], or the zero value when it is out of range, so that a
// short list fails a comparison instead of the test binary.
func at[T any](list []T, i int) T {
	if i < 0 || i >= len(list) {
		var zero T
		return zero
	}
	return list[i]
}

type check struct {
	name      string
	got, want any
}

func runChecks(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestSpecExample(t *testing.T) {
	doc := parse(t, readFile(t, specExample))
	if len(doc.Things) != 2 {
		t.Fatalf("got %d things, want 2", len(doc.Things))
	}
	first, second := doc.Things[0], doc.Things[1]
	bom0 := at(second.BillOfMaterials, 0)
	instr := second.Instructions
	runChecks(t, []check{
		{"info.name", doc.Info.Name, "832769e0-e7fc-11e3-ac10-0800200c9a66"},
		{"info.version", doc.Info.Version, "0.0"},
		{"info.url", doc.Info.URL, "http://garyhodgson.com/thingtracker"},
		{"info.updated", doc.Info.Updated, "2013-01-22T23:45:00+01:00"},
		{"info.traversalDepth", doc.Info.TraversalDepth, 1.0},
		{"info.maintainers[0].email", at(doc.Info.Maintainers, 0).Email, "contact@garyhodgson.com"},
		{"info.thingsCache.thingsCount", doc.Info.ThingsCache.ThingsCount, 302.0},
		{"info.trackers[0].status", at(doc.Info.Trackers, 0).Status, "ok"},
		{"info.trackers[0].thingsCache.thingsCount", at(doc.Info.Trackers, 0).ThingsCache.ThingsCount, 300.0},
		{"info.ext", doc.Info.Ext, topics.Extensions(nil)},
		{"things[0].id", first.ID, "cdebf011-e999-4dc5-b4c2-c4163f5584a0"},
		{"things[0].version", first.Version, DefaultVersion},
		{"things[0].tags", first.Tags, []string{"mechanical movement", "fun"}},
		{"things[1].title", second.Title, "Mechanical Movement #27"},
		{"things[1].version", second.Version, DefaultVersion},
		{"things[1].metadata.submitter.name", second.Metadata.Submitter.Name, "Gary Hodgson"},
		{"things[1].metadata.created", second.Metadata.Created, "2013-01-17T20:13:30.362Z"},
		{"things[1].relationships", len(second.Relationships), 2},
		{"things[1].billOfMaterials", len(second.BillOfMaterials), 8},
		{"things[1].billOfMaterials[0].partNumber", bom0.PartNumber, "1"},
		{"things[1].billOfMaterials[0].thumbnailUrl", bom0.ThumbnailURL, "https://github.com/garyhodgson/mechanical-movement-27/raw/master/img/frame.png"},
		{"things[1].billOfMaterials[0].xBomMetadata", canon(bom0.Ext["xBomMetadata"]), `{"note":"This part has not yet been tested."}`},
		{"things[1].billOfMaterials[4].quantity", at(second.BillOfMaterials, 4).Quantity, 3.0},
		{"things[1].instructions", len(instr), 3},
		{"things[1].instructions[0].imageUrls", len(at(instr, 0).ImageURLs), 3},
		{"things[1].instructions[2].xInstructionMetadata", canon(at(instr, 2).Ext["xInstructionMetadata"]),
			`{"note":"So far the wheels have been printed and tested, but not yet the frame. This is shown in the attached image."}`},
	})
}

func info(d *Document) any   { return d.Info }
func thing0(d *Document) any { return at(d.Things, 0) }

func TestVariants(t *testing.T) {
	bom := func(d *Document) any { return at(at(d.Things, 0).BillOfMaterials, 0) }
	images := func(d *Document) any { return at(at(d.Things, 0).Instructions, 0).ImageURLs }
	version := func(d *Document) any { return d.Info.Version }
	thingVersion := func(d *Document) any { return at(d.Things, 0).Version }
	count := func(d *Document) any { return len(d.Things) }
	withThing := func(members string) string {
		return `{"id":"t","things":[{"id":"a","title":"A"` + members + `}]}`
	}
	for _, tc := range []struct {
		name string
		doc  string
		get  func(*Document) any
		want any
	}{
		{"trackersCount ignored", `{"id":"t","trackersCount":3}`, info, topics.TrackerInfo{Name: "t"}},
		{"trackers-count ignored", `{"id":"t","trackers-count":3}`, info, topics.TrackerInfo{Name: "t"}},
		{"thingsCount ignored", `{"id":"t","thingsCount":99,"things":[]}`, info, topics.TrackerInfo{Name: "t"}},
		{"trackersTraversalDepth", `{"id":"t","trackersTraversalDepth":2}`, info, topics.TrackerInfo{Name: "t", TraversalDepth: 2}},
		{"trackersTraversal-depth", `{"id":"t","trackersTraversal-depth":4}`, info, topics.TrackerInfo{Name: "t", TraversalDepth: 4}},
		{"version number 0.0", `{"id":"t","version":0.0}`, version, "0.0"},
		{"version number 1", `{"id":"t","version":1}`, version, "1"},
		{"version number 1e2", `{"id":"t","version":1e2}`, version, "1e2"},
		{"version number -0.50", `{"id":"t","version":-0.50}`, version, "-0.50"},
		{"version string", `{"id":"t","version":"2.1-beta"}`, version, "2.1-beta"},
		{"version null", `{"id":"t","version":null}`, version, ""},
		{"thing version number 0.0", withThing(`,"version":0.0`), thingVersion, "0.0"},
		{"thing version number 3", withThing(`,"version":3`), thingVersion, "3"},
		{"thing version string", withThing(`,"version":"v2"`), thingVersion, "v2"},
		{"thing version absent", withThing(``), thingVersion, DefaultVersion},
		{"thing version null", withThing(`,"version":null`), thingVersion, DefaultVersion},
		{"imageUrls", withThing(`,"instructions":[{"imageUrls":["a.png","b.png"]}]`), images, []string{"a.png", "b.png"}},
		{"images", withThing(`,"instructions":[{"images":["c.png"]}]`), images, []string{"c.png"}},
		{"xBomMetadata", withThing(`,"billOfMaterials":[{"xBomMetadata": {"a": 1}}]`), bom,
			topics.BOMItem{Ext: topics.Extensions{"xBomMetadata": jsontext.Value(`{"a": 1}`)}}},
		{"xBOMMetadata normalised", withThing(`,"billOfMaterials":[{"xBOMMetadata":[ 1 ,2 ]}]`), bom,
			topics.BOMItem{Ext: topics.Extensions{"xBomMetadata": jsontext.Value(`[ 1 ,2 ]`)}}},
		{"thumbnailUrl", withThing(`,"billOfMaterials":[{"thumbnailUrl":"t.png"}]`), bom, topics.BOMItem{ThumbnailURL: "t.png"}},
		{"thumbnailURL", withThing(`,"billOfMaterials":[{"thumbnailURL":"u.png"}]`), bom, topics.BOMItem{ThumbnailURL: "u.png"}},
		{"partNumber string", withThing(`,"billOfMaterials":[{"partNumber":"P-7"}]`), bom, topics.BOMItem{PartNumber: "P-7"}},
		{"partNumber number", withThing(`,"billOfMaterials":[{"partNumber":12}]`), bom, topics.BOMItem{PartNumber: "12"}},
		{"partNumber number 1.50", withThing(`,"billOfMaterials":[{"partNumber":1.50}]`), bom, topics.BOMItem{PartNumber: "1.50"}},
		{"refUrl", withThing(`,"refUrl":"https://example.org/r"`), func(d *Document) any { return at(d.Things, 0).RefURL }, "https://example.org/r"},
		{"things absent", `{"id":"t"}`, count, 0},
		{"things empty", `{"id":"t","things":[]}`, count, 0},
		{"things null", `{"id":"t","things":null}`, count, 0},
		{"null member is absent", withThing(`,"description":null,"tags":null`), thing0,
			topics.Thing{ID: "a", Title: "A", Version: DefaultVersion}},
		{"metadata", withThing(`,"metadata":{"created":"c","updated":"u","submitter":{"name":"S","xIdentityMetadata":true}}`),
			func(d *Document) any { return at(d.Things, 0).Metadata },
			&topics.ThingMetadata{Created: "c", Updated: "u",
				Submitter: &topics.Person{Name: "S", Ext: topics.Extensions{"xIdentityMetadata": jsontext.Value(`true`)}}}},
		{"any x*Metadata kept", withThing(`,"xOther9Metadata":"s","xThingMetadata":null`), thing0,
			topics.Thing{ID: "a", Title: "A", Version: DefaultVersion, Ext: topics.Extensions{
				"xOther9Metadata": jsontext.Value(`"s"`), "xThingMetadata": jsontext.Value(`null`)}}},
		{"escaped strings", `{"id":"t\u00e9","description":"a\"b\nc"}`, info,
			topics.TrackerInfo{Name: "té", Description: "a\"b\nc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := parse(t, []byte(tc.doc))
			if got := tc.get(doc); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestTestdata reads the documents in testdata, written to the spellings
// of each schema file.
func TestTestdata(t *testing.T) {
	ext := func(s string) jsontext.Value { return jsontext.Value(s) }
	for _, tc := range []struct {
		file   string
		checks func(d *Document) []check
	}{
		{"js-schema.json", func(d *Document) []check {
			th := at(d.Things, 0)
			b := at(th.BillOfMaterials, 0)
			return []check{
				{"info", d.Info, topics.TrackerInfo{
					Name: "js-schema-tracker", Version: "1.2", URL: "https://example.org/tracker",
					Description: "Written to the js-schema spellings.", Updated: "2014-06-01T12:00:00Z",
					TraversalDepth: 2,
					Maintainers: []topics.Person{{Name: "Ada", Email: "ada@example.org",
						Ext: topics.Extensions{"xIdentityMetadata": ext(`{"pgp": "ABCD 1234"}`)}}},
					Ext: topics.Extensions{"xTrackerMetadata": ext(`{"generator": "hand"}`)},
				}},
				{"things", len(d.Things), 1},
				{"version", th.Version, DefaultVersion},
				{"refUrl", th.RefURL, "https://example.org/ref/gear"},
				{"partNumber", b.PartNumber, "17"},
				{"thumbnailURL", b.ThumbnailURL, "https://example.org/gear.png"},
				{"xBOMMetadata", b.Ext, topics.Extensions{"xBomMetadata": ext(`{"tested": false, "notes": [ "prints  flat" ]}`)}},
				{"images", at(th.Instructions, 0).ImageURLs, []string{"https://example.org/step1.png"}},
			}
		}},
		{"js-schema-numbers.json", func(d *Document) []check {
			th := at(d.Things, 0)
			return []check{
				{"info", d.Info, topics.TrackerInfo{Name: "numbers", Version: "1"}},
				{"things", len(d.Things), 2},
				{"things[0].version", th.Version, "2.50"},
				{"things[1].version", at(d.Things, 1).Version, "0.0"},
				{"bom", th.BillOfMaterials, []topics.BOMItem{
					{PartNumber: "1", Quantity: 4, Unit: "EA"},
					{PartNumber: "-3e2", ThumbnailURL: "https://example.org/b.png", Ext: topics.Extensions{"xBomMetadata": ext(`7`)}},
					{PartNumber: "B-3", ThumbnailURL: "https://example.org/c.png"},
				}},
				{"instructions", th.Instructions, []topics.Instruction{
					{Step: 1},
					{Step: 2.5, Text: "Bolt it.", ImageURLs: []string{"a.png", "b.png"},
						Ext: topics.Extensions{"xInstructionMetadata": ext(`{"torque": "2 Nm"}`)}},
				}},
			}
		}},
		{"schema-json.json", func(d *Document) []check {
			return []check{{"document", *d, schemaJSONWant}}
		}},
		{"empty.json", func(d *Document) []check {
			return []check{{"document", *d, Document{Info: topics.TrackerInfo{Name: "empty"}}}}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			doc := parse(t, readFile(t, filepath.Join("testdata", tc.file)))
			runChecks(t, tc.checks(doc))
		})
	}
}

// schemaJSONWant is testdata/schema-json.json as imported: every member of
// every kind of object, and x*Metadata at every level.
var schemaJSONWant = Document{
	Info: topics.TrackerInfo{
		Name: "schema-json-tracker", Title: "Everything", Version: "0.10",
		URL:            "https://example.org/everything",
		Description:    "Written to schema.json spellings, with x*Metadata at every level.",
		Updated:        "2020-02-02T20:20:20Z",
		TraversalDepth: 3,
		Maintainers:    []topics.Person{{Name: "Grace", URL: "https://example.org/grace"}},
		ThingsCache: &topics.ThingsCache{URL: "https://example.org/cache", ThingsCount: 40, Updated: "2024-03-03T00:00:00Z",
			Ext: topics.Extensions{"xThingsCacheMetadata": jsontext.Value(`{"etag": "abc"}`)}},
		Trackers: []topics.TrackerRef{{
			ID: "peer", URL: "https://peer.example.org/tracker", Accessed: "2024-03-03T00:00:00Z", Status: "ok",
			ThingsCache: &topics.ThingsCache{URL: "https://peer.example.org/cache", ThingsCount: 9},
			Ext:         topics.Extensions{"xTrackerRefMetadata": jsontext.Value(`{"trust": "high"}`)},
		}},
		Ext: topics.Extensions{"xTrackerMetadata": jsontext.Value(`{"generator": "hand", "nested": {"xInnerMetadata": [1, 2]}}`)},
	},
	Things: []topics.Thing{{
		ID: "clock", Title: "Clock", Version: "2024.1",
		URL: "https://example.org/clock", DownloadURL: "https://example.org/clock.zip",
		Authors: []topics.Person{{Name: "Grace",
			Ext: topics.Extensions{"xIdentityMetadata": jsontext.Value(`{"orcid": "0000-0001"}`)}}},
		Licenses:      []string{"CC-BY-4.0"},
		ThumbnailURLs: []string{"https://example.org/clock.png"},
		Description:   "A clock.",
		Created:       "2024-01-01T00:00:00Z",
		Updated:       "2024-02-01T00:00:00Z",
		Metadata: &topics.ThingMetadata{
			Created: "2024-01-02T00:00:00Z", Updated: "2024-02-02T00:00:00Z",
			Submitter: &topics.Person{Name: "Bot", Email: "bot@example.org",
				Ext: topics.Extensions{"xIdentityMetadata": jsontext.Value(`{"kind": "bot"}`)}},
			Ext: topics.Extensions{"xSubmissionMetadata": jsontext.Value(`{"via": "import"}`)},
		},
		Subject:    []string{"time"},
		Media:      []string{"PETG"},
		Categories: []string{"household"},
		Tags:       []string{"clock", "gears"},
		Relationships: []topics.Relationship{{Title: "Escapement", Type: "reference", URL: "https://example.org/esc",
			Ext: topics.Extensions{"xRelationshipMetadata": jsontext.Value(`{"weight": 1}`)}}},
		BillOfMaterials: []topics.BOMItem{{
			PartNumber: "C-1", Description: "Face", Type: "generated", URL: "https://example.org/face.stl",
			Mimetype: "application/sla", ThumbnailURL: "https://example.org/face.png", Size: 1234,
			SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Ext:    topics.Extensions{"xBomMetadata": jsontext.Value(`{"layer": 0.2}`)},
		}},
		Instructions: []topics.Instruction{{Step: 1, Text: "Print the face.", ImageURLs: []string{"https://example.org/face.png"},
			Ext: topics.Extensions{"xInstructionMetadata": jsontext.Value(`null`)}}},
		Parents: []topics.Parent{{Thing: "clock-proto", Version: "1"}},
		Ext: topics.Extensions{
			"xThingMetadata":         jsontext.Value(`{"difficulty": "easy"}`),
			"xPrintSettingsMetadata": jsontext.Value(`{"infill": 20}`),
		},
	}},
}

func TestParseThing(t *testing.T) {
	id := topics.IDOf([]byte("parent"))
	tracker := topics.DeriveTrackerID(make([]byte, 32), "designs")
	for _, tc := range []struct {
		name string
		in   string
		want topics.Thing
	}{
		{"minimal", `{"id":"a","title":"A"}`, topics.Thing{ID: "a", Title: "A", Version: DefaultVersion}},
		{"pretty with variants", "{\n  \"id\": \"a\",\n  \"title\": \"A\",\n  \"version\": \"0.0\",\n" +
			"  \"instructions\": [ {\"images\": [\"i.png\"]} ],\n  \"billOfMaterials\": [ {\"partNumber\": 5, \"thumbnailURL\": \"t\"} ]\n}\n",
			topics.Thing{ID: "a", Title: "A", Version: "0.0",
				Instructions:    []topics.Instruction{{ImageURLs: []string{"i.png"}}},
				BillOfMaterials: []topics.BOMItem{{PartNumber: "5", ThumbnailURL: "t"}}}},
		{"parents", `{"id":"a","title":"A","version":"2","parents":[{"announcement":"` + id.String() +
			`","tracker":"` + tracker.String() + `","thing":"a","version":"1"}]}`,
			topics.Thing{ID: "a", Title: "A", Version: "2",
				Parents: []topics.Parent{{Announcement: id, Tracker: tracker, Thing: "a", Version: "1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseThing([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseThing: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %#v\nwant %#v", *got, tc.want)
			}
		})
	}
}
