package topics

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Extensions holds x*Metadata members (xThingMetadata, xBomMetadata, …)
// verbatim. Any other unknown member is invalid.
type Extensions map[string]jsontext.Value

// Thing is the TTN Thing as announced: the TTN fields plus version and
// parents. Field names and shapes follow the TTN specification's schema.
type Thing struct {
	ID              string         `json:"id"`
	Title           string         `json:"title"`
	Version         string         `json:"version"`
	URL             string         `json:"url,omitempty"`
	DownloadURL     string         `json:"downloadUrl,omitempty"`
	RefURL          string         `json:"refUrl,omitempty"`
	Authors         []Person       `json:"authors,omitempty"`
	Licenses        []string       `json:"licenses,omitempty"`
	ThumbnailURLs   []string       `json:"thumbnailUrls,omitempty"`
	Description     string         `json:"description,omitempty"`
	Created         string         `json:"created,omitempty"`
	Updated         string         `json:"updated,omitempty"`
	Metadata        *ThingMetadata `json:"metadata,omitempty"`
	Subject         []string       `json:"subject,omitempty"`
	Media           []string       `json:"media,omitempty"`
	Categories      []string       `json:"categories,omitempty"`
	Tags            []string       `json:"tags,omitempty"`
	Relationships   []Relationship `json:"relationships,omitempty"`
	BillOfMaterials []BOMItem      `json:"billOfMaterials,omitempty"`
	Instructions    []Instruction  `json:"instructions,omitempty"`
	Parents         []Parent       `json:"parents,omitempty"`
	Ext             Extensions     `json:",embed"`
}

// Person is a TTN identity: an author, maintainer or submitter.
type Person struct {
	Name  string     `json:"name"`
	URL   string     `json:"url,omitempty"`
	Email string     `json:"email,omitempty"`
	Ext   Extensions `json:",embed"`
}

// ThingMetadata is the TTN Thing's "metadata" object (who submitted it, when).
type ThingMetadata struct {
	Created   string     `json:"created,omitempty"`
	Updated   string     `json:"updated,omitempty"`
	Submitter *Person    `json:"submitter,omitempty"`
	Ext       Extensions `json:",embed"`
}

// Relationship links a Thing to something it refers to.
type Relationship struct {
	Title string     `json:"title,omitempty"`
	Type  string     `json:"type,omitempty"`
	URL   string     `json:"url,omitempty"`
	Ext   Extensions `json:",embed"`
}

// BOMItem is one entry of a bill of materials; Size and SHA256 let a
// downloader check the file it fetched from URL.
type BOMItem struct {
	PartNumber   string     `json:"partNumber,omitempty"`
	Description  string     `json:"description,omitempty"`
	Type         string     `json:"type,omitempty"`
	URL          string     `json:"url,omitempty"`
	Mimetype     string     `json:"mimetype,omitempty"`
	Unit         string     `json:"unit,omitempty"`
	Quantity     float64    `json:"quantity,omitzero"`
	ThumbnailURL string     `json:"thumbnailUrl,omitempty"`
	Size         int64      `json:"size,omitzero"`
	SHA256       string     `json:"sha256,omitempty"`
	Ext          Extensions `json:",embed"`
}

// Instruction is one build step.
type Instruction struct {
	Step      float64    `json:"step,omitzero"`
	Text      string     `json:"text,omitempty"`
	ImageURLs []string   `json:"imageUrls,omitempty"`
	Ext       Extensions `json:",embed"`
}

// Parent names what a version derives from, for ancestry and attribution.
// Thing is required; Announcement pins the exact version when known.
type Parent struct {
	Announcement ID        `json:"announcement,omitzero"`
	Tracker      TrackerID `json:"tracker,omitzero"`
	Thing        string    `json:"thing"`
	Version      string    `json:"version,omitempty"`
}

// TrackerInfo describes a tracker (kind "tracker"). Name is what the tracker
// ID hashes; the other fields are the TTN tracker document's own.
type TrackerInfo struct {
	Name           string       `json:"name"`
	Title          string       `json:"title,omitempty"`
	Description    string       `json:"description,omitempty"`
	URL            string       `json:"url,omitempty"`
	Version        string       `json:"version,omitempty"`
	Updated        string       `json:"updated,omitempty"`
	TraversalDepth float64      `json:"trackersTraversalDepth,omitzero"`
	Maintainers    []Person     `json:"maintainers,omitempty"`
	ThingsCache    *ThingsCache `json:"thingsCache,omitempty"`
	Trackers       []TrackerRef `json:"trackers,omitempty"`
	Ext            Extensions   `json:",embed"`
}

// ThingsCache is TTN's pointer to a cached list of Things.
type ThingsCache struct {
	URL         string     `json:"url"`
	ThingsCount float64    `json:"thingsCount,omitzero"`
	Updated     string     `json:"updated,omitempty"`
	Ext         Extensions `json:",embed"`
}

// TrackerRef is a TTN tracker document's reference to another tracker.
type TrackerRef struct {
	ID          string       `json:"id,omitempty"`
	URL         string       `json:"url"`
	Accessed    string       `json:"accessed,omitempty"`
	Status      string       `json:"status,omitempty"`
	ThingsCache *ThingsCache `json:"thingsCache,omitempty"`
	Ext         Extensions   `json:",embed"`
}

// NodeInfo is a node record (kind "node") on the node tracker: a profile and
// the list of the node's trackers.
type NodeInfo struct {
	Name     string      `json:"name,omitempty"`
	Trackers []TrackerID `json:"trackers"`
	Ext      Extensions  `json:",embed"`
}

// checker records the first problem found while walking a body.
type checker struct{ err error }

func (c *checker) failf(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *checker) str(path, s string, max int) {
	if len(s) > max {
		c.failf("%s is %d bytes, over the %d byte limit", path, len(s), max)
	} else if !utf8.ValidString(s) {
		c.failf("%s is not valid UTF-8", path)
	}
}

func (c *checker) required(path, s string, max int) {
	if s == "" {
		c.failf("%s is required", path)
	}
	c.str(path, s, max)
}

func (c *checker) strs(path string, list []string, max int) {
	c.count(path, len(list))
	for i, s := range list {
		c.str(fmt.Sprintf("%s[%d]", path, i), s, max)
	}
}

func (c *checker) count(path string, n int) {
	if n > MaxListLen {
		c.failf("%s has %d entries, over the %d limit", path, n, MaxListLen)
	}
}

func (c *checker) number(path string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		c.failf("%s is not a finite number", path)
	}
}

// ext accepts x*Metadata members only, with values that follow the JSON
// rules of CheckStrictJSON and names that differ in more than case.
func (c *checker) ext(path string, e Extensions) {
	for name, v := range e {
		if !IsExtensionName(name) {
			c.failf("%s: unknown member %q", path, clip(name))
			continue
		}
		if len(v) > MaxMetadataLen {
			c.failf("%s.%s is %d bytes, over the %d byte limit", path, name, len(v), MaxMetadataLen)
		}
		if err := CheckStrictJSON(v); err != nil {
			c.failf("%s.%s: %v", path, name, err)
		}
		for other := range e {
			if other != name && strings.EqualFold(other, name) {
				c.failf("%s: object names %q and %q differ only in case", path, min(name, other), max(name, other))
			}
		}
	}
}

// IsExtensionName reports whether name is an x*Metadata member name: "x", an
// upper-case letter, letters or digits, then "Metadata".
func IsExtensionName(name string) bool {
	const suffix = "Metadata"
	if len(name) < 2+len(suffix) || name[0] != 'x' || name[1] < 'A' || name[1] > 'Z' || name[len(name)-len(suffix):] != suffix {
		return false
	}
	for i := 2; i < len(name)-len(suffix); i++ {
		if b := name[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return false
		}
	}
	return true
}

func (c *checker) person(path string, p *Person) {
	c.ext(path, p.Ext)
	c.required(path+".name", p.Name, MaxTitleLen)
	c.str(path+".url", p.URL, MaxTextLen)
	c.str(path+".email", p.Email, MaxTextLen)
}

func (c *checker) people(path string, ps []Person) {
	c.count(path, len(ps))
	for i := range ps {
		c.person(fmt.Sprintf("%s[%d]", path, i), &ps[i])
	}
}

func (c *checker) thingsCache(path string, tc *ThingsCache) {
	if tc == nil {
		return
	}
	c.required(path+".url", tc.URL, MaxTextLen)
	c.number(path+".thingsCount", tc.ThingsCount)
	c.str(path+".updated", tc.Updated, MaxTextLen)
	c.ext(path, tc.Ext)
}

// Check reports the first way t breaks the payload rules, or nil.
func (t *Thing) Check() error {
	var c checker
	c.ext("thing", t.Ext) // first: a mis-cased known name lands here
	c.required("thing.id", t.ID, MaxIDLen)
	c.required("thing.title", t.Title, MaxTitleLen)
	c.required("thing.version", t.Version, MaxVersionLen)
	for _, f := range []struct {
		path string
		s    string
	}{
		{"thing.url", t.URL}, {"thing.downloadUrl", t.DownloadURL}, {"thing.refUrl", t.RefURL},
		{"thing.created", t.Created}, {"thing.updated", t.Updated},
	} {
		c.str(f.path, f.s, MaxTextLen)
	}
	c.str("thing.description", t.Description, MaxDescriptionLen)
	c.people("thing.authors", t.Authors)
	c.strs("thing.licenses", t.Licenses, MaxTitleLen)
	c.strs("thing.thumbnailUrls", t.ThumbnailURLs, MaxTextLen)
	c.strs("thing.subject", t.Subject, MaxTitleLen)
	c.strs("thing.media", t.Media, MaxTitleLen)
	c.strs("thing.categories", t.Categories, MaxTitleLen)
	c.strs("thing.tags", t.Tags, MaxTitleLen)
	if m := t.Metadata; m != nil {
		c.str("thing.metadata.created", m.Created, MaxTextLen)
		c.str("thing.metadata.updated", m.Updated, MaxTextLen)
		if m.Submitter != nil {
			c.person("thing.metadata.submitter", m.Submitter)
		}
		c.ext("thing.metadata", m.Ext)
	}
	c.count("thing.relationships", len(t.Relationships))
	for i, r := range t.Relationships {
		p := fmt.Sprintf("thing.relationships[%d]", i)
		c.str(p+".title", r.Title, MaxTitleLen)
		c.str(p+".type", r.Type, MaxTitleLen)
		c.str(p+".url", r.URL, MaxTextLen)
		c.ext(p, r.Ext)
	}
	c.count("thing.billOfMaterials", len(t.BillOfMaterials))
	for i, b := range t.BillOfMaterials {
		p := fmt.Sprintf("thing.billOfMaterials[%d]", i)
		c.str(p+".partNumber", b.PartNumber, MaxIDLen)
		c.str(p+".description", b.Description, MaxDescriptionLen)
		c.str(p+".type", b.Type, MaxTitleLen)
		c.str(p+".url", b.URL, MaxTextLen)
		c.str(p+".mimetype", b.Mimetype, MaxTitleLen)
		c.str(p+".unit", b.Unit, MaxTitleLen)
		c.number(p+".quantity", b.Quantity)
		c.str(p+".thumbnailUrl", b.ThumbnailURL, MaxTextLen)
		if b.Size < 0 {
			c.failf("%s.size is negative", p)
		}
		if b.SHA256 != "" && !isLowerHex(b.SHA256, 64) {
			c.failf("%s.sha256 is not 64 lowercase hex digits", p)
		}
		c.ext(p, b.Ext)
	}
	c.count("thing.instructions", len(t.Instructions))
	for i, in := range t.Instructions {
		p := fmt.Sprintf("thing.instructions[%d]", i)
		c.number(p+".step", in.Step)
		c.str(p+".text", in.Text, MaxDescriptionLen)
		c.strs(p+".imageUrls", in.ImageURLs, MaxTextLen)
		c.ext(p, in.Ext)
	}
	c.count("thing.parents", len(t.Parents))
	for i, par := range t.Parents {
		p := fmt.Sprintf("thing.parents[%d]", i)
		c.required(p+".thing", par.Thing, MaxIDLen)
		c.str(p+".version", par.Version, MaxVersionLen)
	}
	return c.err
}

// Check reports the first way ti breaks the payload rules, or nil.
func (ti *TrackerInfo) Check() error {
	var c checker
	c.ext("tracker_info", ti.Ext)
	c.required("tracker_info.name", ti.Name, MaxIDLen)
	c.str("tracker_info.title", ti.Title, MaxTitleLen)
	c.str("tracker_info.description", ti.Description, MaxDescriptionLen)
	c.str("tracker_info.url", ti.URL, MaxTextLen)
	c.str("tracker_info.version", ti.Version, MaxVersionLen)
	c.str("tracker_info.updated", ti.Updated, MaxTextLen)
	c.number("tracker_info.trackersTraversalDepth", ti.TraversalDepth)
	c.people("tracker_info.maintainers", ti.Maintainers)
	c.thingsCache("tracker_info.thingsCache", ti.ThingsCache)
	c.count("tracker_info.trackers", len(ti.Trackers))
	for i, r := range ti.Trackers {
		p := fmt.Sprintf("tracker_info.trackers[%d]", i)
		c.str(p+".id", r.ID, MaxIDLen)
		c.required(p+".url", r.URL, MaxTextLen)
		c.str(p+".accessed", r.Accessed, MaxTextLen)
		c.str(p+".status", r.Status, MaxTitleLen)
		c.thingsCache(p+".thingsCache", r.ThingsCache)
		c.ext(p, r.Ext)
	}
	return c.err
}

// Check reports the first way n breaks the payload rules, or nil.
func (n *NodeInfo) Check() error {
	var c checker
	c.str("node_info.name", n.Name, MaxTitleLen)
	if len(n.Trackers) > MaxNodeTrackers {
		c.failf("node_info.trackers has %d entries, over the %d limit", len(n.Trackers), MaxNodeTrackers)
	}
	c.ext("node_info", n.Ext)
	return c.err
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return false
		}
	}
	return true
}
