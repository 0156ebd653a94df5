package topics

import (
	"fmt"
	"math"
	"strings"

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

// NodeInfo is a node record (kind "node") on the node tracker: a profile,
// the list of the node's trackers, and what the node follows.
type NodeInfo struct {
	Name        string      `json:"name,omitempty"`
	Description string      `json:"description,omitempty"` // may span lines
	URL         string      `json:"url,omitempty"`
	Trackers    []TrackerID `json:"trackers"`
	// Follows is nil when the node keeps its follows to itself; an empty
	// Follows says it follows nothing.
	Follows *Follows `json:"follows,omitzero"`
	// Next is the node's commitment to its recovery key (Commitment of
	// its raw public key): the key a rotation must be signed by. The one
	// in force is that of the lowest-seq node record carrying one; node
	// records repeat it.
	Next string     `json:"next,omitempty"`
	Ext  Extensions `json:",embed"`
}

// Follows lists the trackers and nodes a node follows, so that others can
// follow what it follows.
type Follows struct {
	Trackers []TrackerID `json:"trackers,omitempty"`
	Nodes    []string    `json:"nodes,omitempty"` // node IDs, canonical
}

// checker records the first problem found while walking a body. It keeps
// where it is as a small stack and spells the path out only for an error, so
// checking a valid body allocates nothing.
type checker struct {
	err   error
	stack [4]step
	depth int
}

// step is one level of a path: a name, and an index into it (or -1).
type step struct {
	name  string
	index int
}

func (c *checker) push(name string, index int) { c.stack[c.depth] = step{name, index}; c.depth++ }
func (c *checker) pop()                        { c.depth-- }

// path returns the current path followed by leaf.
func (c *checker) path(leaf string) string {
	var b strings.Builder
	for _, st := range c.stack[:c.depth] {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(st.name)
		if st.index >= 0 {
			fmt.Fprintf(&b, "[%d]", st.index)
		}
	}
	if leaf != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(leaf)
	}
	return b.String()
}

func (c *checker) failf(leaf, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%s"+format, append([]any{c.path(leaf)}, args...)...)
	}
}

// str checks a one-line string: its length, and no control characters
// (they would reach logs, URLs, terminals and pages as they are). Its UTF-8
// is checked where JSON is read and written.
func (c *checker) str(leaf, s string, max int) {
	c.text(leaf, s, max)
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		c.failf(leaf, " holds a control character (%U at byte %d)", []rune(s[i:])[0], i)
	}
}

// text checks a multi-line string: its length, and no control characters
// but line breaks and tabs.
func (c *checker) text(leaf, s string, max int) {
	if len(s) > max {
		c.failf(leaf, " is %d bytes, over the %d byte limit", len(s), max)
		return
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return isControl(r) && r != '\n' && r != '\r' && r != '\t' }); i >= 0 {
		c.failf(leaf, " holds a control character (%U at byte %d)", []rune(s[i:])[0], i)
	}
}

// isControl reports the C0 and C1 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }

func (c *checker) required(leaf, s string, max int) {
	if s == "" {
		c.failf(leaf, " is required")
	}
	c.str(leaf, s, max)
}

func (c *checker) strs(leaf string, list []string, max int) {
	c.count(leaf, len(list))
	for i, s := range list {
		c.push(leaf, i)
		c.str("", s, max)
		c.pop()
	}
}

func (c *checker) count(leaf string, n int) { c.countMax(leaf, n, MaxListLen) }

// countMax checks a list's length against max and reports whether it is
// within it.
func (c *checker) countMax(leaf string, n, max int) bool {
	if n > max {
		c.failf(leaf, " has %d entries, over the %d limit", n, max)
		return false
	}
	return true
}

func (c *checker) number(leaf string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		c.failf(leaf, " is not a finite number")
	}
}

// ext accepts x*Metadata members only, with values that follow the JSON
// rules of CheckStrictJSON and names that differ in more than case.
func (c *checker) ext(e Extensions) {
	var folded map[string]string // lower case → name; names are ASCII
	if len(e) > 1 {
		folded = make(map[string]string, len(e))
	}
	for name, v := range e {
		if !IsExtensionName(name) {
			c.failf("", ": unknown member %q", clip(name))
			continue
		}
		if len(v) > MaxMetadataLen {
			c.failf(name, " is %d bytes, over the %d byte limit", len(v), MaxMetadataLen)
		}
		if err := CheckStrictJSON(v); err != nil {
			c.failf(name, ": %v", err)
		}
		if folded == nil {
			continue
		}
		lower := strings.ToLower(name)
		if other, ok := folded[lower]; ok {
			c.failf("", ": object names %q and %q differ only in case", min(name, other), max(name, other))
		}
		folded[lower] = name
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

func (c *checker) person(p *Person) {
	c.ext(p.Ext)
	c.required("name", p.Name, MaxTitleLen)
	c.str("url", p.URL, MaxTextLen)
	c.str("email", p.Email, MaxTextLen)
}

func (c *checker) people(leaf string, ps []Person) {
	c.count(leaf, len(ps))
	for i := range ps {
		c.push(leaf, i)
		c.person(&ps[i])
		c.pop()
	}
}

func (c *checker) thingsCache(leaf string, tc *ThingsCache) {
	if tc == nil {
		return
	}
	c.push(leaf, -1)
	c.ext(tc.Ext)
	c.required("url", tc.URL, MaxTextLen)
	c.number("thingsCount", tc.ThingsCount)
	c.str("updated", tc.Updated, MaxTextLen)
	c.pop()
}

// Check reports the first way t breaks the payload rules, or nil.
func (t *Thing) Check() error {
	var c checker
	c.push("thing", -1)
	c.ext(t.Ext) // first: a mis-cased known name lands here
	c.required("id", t.ID, MaxIDLen)
	c.required("title", t.Title, MaxTitleLen)
	c.required("version", t.Version, MaxVersionLen)
	c.str("url", t.URL, MaxTextLen)
	c.str("downloadUrl", t.DownloadURL, MaxTextLen)
	c.str("refUrl", t.RefURL, MaxTextLen)
	c.str("created", t.Created, MaxTextLen)
	c.str("updated", t.Updated, MaxTextLen)
	c.text("description", t.Description, MaxDescriptionLen)
	c.people("authors", t.Authors)
	c.strs("licenses", t.Licenses, MaxTitleLen)
	c.strs("thumbnailUrls", t.ThumbnailURLs, MaxTextLen)
	c.strs("subject", t.Subject, MaxTitleLen)
	c.strs("media", t.Media, MaxTitleLen)
	c.strs("categories", t.Categories, MaxTitleLen)
	c.strs("tags", t.Tags, MaxTitleLen)
	if m := t.Metadata; m != nil {
		c.push("metadata", -1)
		c.ext(m.Ext)
		c.str("created", m.Created, MaxTextLen)
		c.str("updated", m.Updated, MaxTextLen)
		if m.Submitter != nil {
			c.push("submitter", -1)
			c.person(m.Submitter)
			c.pop()
		}
		c.pop()
	}
	c.count("relationships", len(t.Relationships))
	for i, r := range t.Relationships {
		c.push("relationships", i)
		c.ext(r.Ext)
		c.str("title", r.Title, MaxTitleLen)
		c.str("type", r.Type, MaxTitleLen)
		c.str("url", r.URL, MaxTextLen)
		c.pop()
	}
	c.count("billOfMaterials", len(t.BillOfMaterials))
	for i := range t.BillOfMaterials {
		b := &t.BillOfMaterials[i]
		c.push("billOfMaterials", i)
		c.ext(b.Ext)
		c.str("partNumber", b.PartNumber, MaxIDLen)
		c.text("description", b.Description, MaxDescriptionLen)
		c.str("type", b.Type, MaxTitleLen)
		c.str("url", b.URL, MaxTextLen)
		c.str("mimetype", b.Mimetype, MaxTitleLen)
		c.str("unit", b.Unit, MaxTitleLen)
		c.number("quantity", b.Quantity)
		c.str("thumbnailUrl", b.ThumbnailURL, MaxTextLen)
		if b.Size < 0 {
			c.failf("size", " is negative")
		}
		if b.SHA256 != "" && !isLowerHex(b.SHA256, 64) {
			c.failf("sha256", " is not 64 lowercase hex digits")
		}
		c.pop()
	}
	c.count("instructions", len(t.Instructions))
	for i := range t.Instructions {
		in := &t.Instructions[i]
		c.push("instructions", i)
		c.ext(in.Ext)
		c.number("step", in.Step)
		c.text("text", in.Text, MaxDescriptionLen)
		c.strs("imageUrls", in.ImageURLs, MaxTextLen)
		c.pop()
	}
	c.count("parents", len(t.Parents))
	for i, par := range t.Parents {
		c.push("parents", i)
		c.required("thing", par.Thing, MaxIDLen)
		c.str("version", par.Version, MaxVersionLen)
		c.pop()
	}
	return c.err
}

// Check reports the first way ti breaks the payload rules, or nil.
func (ti *TrackerInfo) Check() error {
	var c checker
	c.push("tracker_info", -1)
	c.ext(ti.Ext)
	c.required("name", ti.Name, MaxIDLen)
	c.str("title", ti.Title, MaxTitleLen)
	c.text("description", ti.Description, MaxDescriptionLen)
	c.str("url", ti.URL, MaxTextLen)
	c.str("version", ti.Version, MaxVersionLen)
	c.str("updated", ti.Updated, MaxTextLen)
	c.number("trackersTraversalDepth", ti.TraversalDepth)
	c.people("maintainers", ti.Maintainers)
	c.thingsCache("thingsCache", ti.ThingsCache)
	c.count("trackers", len(ti.Trackers))
	for i := range ti.Trackers {
		r := &ti.Trackers[i]
		c.push("trackers", i)
		c.ext(r.Ext)
		c.str("id", r.ID, MaxIDLen)
		c.required("url", r.URL, MaxTextLen)
		c.str("accessed", r.Accessed, MaxTextLen)
		c.str("status", r.Status, MaxTitleLen)
		c.thingsCache("thingsCache", r.ThingsCache)
		c.pop()
	}
	return c.err
}

// Check reports the first way n breaks the payload rules, or nil.
func (n *NodeInfo) Check() error {
	var c checker
	c.push("node_info", -1)
	c.ext(n.Ext)
	c.str("name", n.Name, MaxTitleLen)
	c.text("description", n.Description, MaxNodeDescriptionLen)
	c.str("url", n.URL, MaxTextLen)
	c.countMax("trackers", len(n.Trackers), MaxNodeTrackers)
	if n.Next != "" && !isLowerHex(n.Next, 64) {
		c.failf("next", " %q: want the 64 lowercase hex digits of a SHA-256", clip(n.Next))
	}
	if f := n.Follows; f != nil {
		c.push("follows", -1)
		c.countMax("trackers", len(f.Trackers), MaxNodeFollowedTrackers)
		if c.countMax("nodes", len(f.Nodes), MaxNodeFollowedNodes) {
			for i, id := range f.Nodes {
				c.push("nodes", i)
				c.nodeID("", id)
				c.pop()
			}
		}
		c.pop()
	}
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
