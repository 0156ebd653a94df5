package ttn

import (
	"github.com/go-json-experiment/json/jsontext"

	"github.com/thingtracker/ttn/topics"
)

// The members each kind of TTN object accepts, besides any x*Metadata. The
// x*Metadata names listed are the specification's own: they let a mis-cased
// one get a suggestion, and a listed variant is stored under the first name.
var (
	trackerShape = newShape("id", "title", "url", "description", "version", "updated",
		"thingsCount", "trackersCount|trackers-count",
		"trackersTraversalDepth|trackersTraversal-depth",
		"maintainers", "things", "thingsCache", "trackers", "xTrackerMetadata")
	thingShape = newShape("id", "title", "version", "url", "downloadUrl", "refUrl",
		"authors", "licenses", "thumbnailUrls", "description", "created", "updated",
		"metadata", "subject", "media", "categories", "tags", "relationships",
		"billOfMaterials", "instructions", "parents", "xThingMetadata")
	personShape       = newShape("name", "url", "email", "xIdentityMetadata")
	metadataShape     = newShape("created", "updated", "submitter")
	relationshipShape = newShape("title", "type", "url", "xRelationshipMetadata")
	bomShape          = newShape("partNumber", "description", "type", "url", "mimetype", "unit",
		"quantity", "thumbnailUrl|thumbnailURL", "size", "sha256", "xBomMetadata|xBOMMetadata")
	instructionShape = newShape("step", "text", "imageUrls|images", "xInstructionMetadata")
	cacheShape       = newShape("url", "thingsCount", "updated", "xThingsCacheMetadata")
	refShape         = newShape("id", "url", "accessed", "status", "thingsCache")
	parentShape      = newShape("announcement", "tracker", "thing", "version")
)

// trackerInfo reads the document object v, except its things, which it
// hands to thing one by one.
func trackerInfo(v jsontext.Value, info *topics.TrackerInfo, thing func(at string, v jsontext.Value) error) error {
	return members("", v, trackerShape, &info.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "id":
			return str(at, v, &info.Name)
		case "title":
			return str(at, v, &info.Title)
		case "url":
			return str(at, v, &info.URL)
		case "description":
			return str(at, v, &info.Description)
		case "version":
			return text(at, v, &info.Version)
		case "updated":
			return str(at, v, &info.Updated)
		case "thingsCount", "trackersCount":
			var derived float64 // recomputed on export
			return number(at, v, &derived)
		case "trackersTraversalDepth":
			return number(at, v, &info.TraversalDepth)
		case "maintainers":
			return list(at, v, &info.Maintainers, person)
		case "things":
			return each(at, v, thing)
		case "thingsCache":
			info.ThingsCache = new(topics.ThingsCache)
			return thingsCache(at, v, info.ThingsCache)
		case "trackers":
			return list(at, v, &info.Trackers, trackerRef)
		}
		return unhandled(at)
	})
}

// thing reads one Thing object and checks the result. A Thing without a
// version gets DefaultVersion.
func thing(path string, v jsontext.Value, t *topics.Thing) error {
	versioned := false
	err := members(path, v, thingShape, &t.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "id":
			return str(at, v, &t.ID)
		case "title":
			return str(at, v, &t.Title)
		case "version":
			versioned = true
			return text(at, v, &t.Version)
		case "url":
			return str(at, v, &t.URL)
		case "downloadUrl":
			return str(at, v, &t.DownloadURL)
		case "refUrl":
			return str(at, v, &t.RefURL)
		case "authors":
			return list(at, v, &t.Authors, person)
		case "licenses":
			return strs(at, v, &t.Licenses)
		case "thumbnailUrls":
			return strs(at, v, &t.ThumbnailURLs)
		case "description":
			return str(at, v, &t.Description)
		case "created":
			return str(at, v, &t.Created)
		case "updated":
			return str(at, v, &t.Updated)
		case "metadata":
			t.Metadata = new(topics.ThingMetadata)
			return thingMetadata(at, v, t.Metadata)
		case "subject":
			return strs(at, v, &t.Subject)
		case "media":
			return strs(at, v, &t.Media)
		case "categories":
			return strs(at, v, &t.Categories)
		case "tags":
			return strs(at, v, &t.Tags)
		case "relationships":
			return list(at, v, &t.Relationships, relationship)
		case "billOfMaterials":
			return list(at, v, &t.BillOfMaterials, bomItem)
		case "instructions":
			return list(at, v, &t.Instructions, instruction)
		case "parents":
			return list(at, v, &t.Parents, parent)
		}
		return unhandled(at)
	})
	if err != nil {
		return err
	}
	if !versioned {
		t.Version = DefaultVersion
	}
	if err := t.Check(); err != nil {
		return prefixed(path, err)
	}
	return nil
}

func person(path string, v jsontext.Value, p *topics.Person) error {
	return members(path, v, personShape, &p.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "name":
			return str(at, v, &p.Name)
		case "url":
			return str(at, v, &p.URL)
		case "email":
			return str(at, v, &p.Email)
		}
		return unhandled(at)
	})
}

func thingMetadata(path string, v jsontext.Value, m *topics.ThingMetadata) error {
	return members(path, v, metadataShape, &m.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "created":
			return str(at, v, &m.Created)
		case "updated":
			return str(at, v, &m.Updated)
		case "submitter":
			m.Submitter = new(topics.Person)
			return person(at, v, m.Submitter)
		}
		return unhandled(at)
	})
}

func relationship(path string, v jsontext.Value, r *topics.Relationship) error {
	return members(path, v, relationshipShape, &r.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "title":
			return str(at, v, &r.Title)
		case "type":
			return str(at, v, &r.Type)
		case "url":
			return str(at, v, &r.URL)
		}
		return unhandled(at)
	})
}

func bomItem(path string, v jsontext.Value, b *topics.BOMItem) error {
	return members(path, v, bomShape, &b.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "partNumber":
			return text(at, v, &b.PartNumber)
		case "description":
			return str(at, v, &b.Description)
		case "type":
			return str(at, v, &b.Type)
		case "url":
			return str(at, v, &b.URL)
		case "mimetype":
			return str(at, v, &b.Mimetype)
		case "unit":
			return str(at, v, &b.Unit)
		case "quantity":
			return number(at, v, &b.Quantity)
		case "thumbnailUrl":
			return str(at, v, &b.ThumbnailURL)
		case "size":
			return integer(at, v, &b.Size)
		case "sha256":
			return str(at, v, &b.SHA256)
		}
		return unhandled(at)
	})
}

func instruction(path string, v jsontext.Value, in *topics.Instruction) error {
	return members(path, v, instructionShape, &in.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "step":
			return number(at, v, &in.Step)
		case "text":
			return str(at, v, &in.Text)
		case "imageUrls":
			return strs(at, v, &in.ImageURLs)
		}
		return unhandled(at)
	})
}

func thingsCache(path string, v jsontext.Value, c *topics.ThingsCache) error {
	return members(path, v, cacheShape, &c.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "url":
			return str(at, v, &c.URL)
		case "thingsCount":
			return number(at, v, &c.ThingsCount)
		case "updated":
			return str(at, v, &c.Updated)
		}
		return unhandled(at)
	})
}

func trackerRef(path string, v jsontext.Value, r *topics.TrackerRef) error {
	return members(path, v, refShape, &r.Ext, func(field, at string, v jsontext.Value) error {
		switch field {
		case "id":
			return str(at, v, &r.ID)
		case "url":
			return str(at, v, &r.URL)
		case "accessed":
			return str(at, v, &r.Accessed)
		case "status":
			return str(at, v, &r.Status)
		case "thingsCache":
			r.ThingsCache = new(topics.ThingsCache)
			return thingsCache(at, v, r.ThingsCache)
		}
		return unhandled(at)
	})
}

// parent reads a Thing's parent reference, which has no extensions: its
// type has nowhere to keep them.
func parent(path string, v jsontext.Value, p *topics.Parent) error {
	return members(path, v, parentShape, nil, func(field, at string, v jsontext.Value) error {
		var s string
		switch field {
		case "announcement":
			if err := str(at, v, &s); err != nil {
				return err
			}
			id, err := topics.ParseID(s)
			if err == nil && id.IsZero() {
				return errorf(at, "zero announcement id")
			}
			p.Announcement = id
			return prefixed(at, err)
		case "tracker":
			if err := str(at, v, &s); err != nil {
				return err
			}
			id, err := topics.ParseTrackerID(s)
			if err == nil && id.IsZero() {
				return errorf(at, "zero tracker id")
			}
			p.Tracker = id
			return prefixed(at, err)
		case "thing":
			return str(at, v, &p.Thing)
		case "version":
			return text(at, v, &p.Version)
		}
		return unhandled(at)
	})
}

// unhandled reports a shape member without a case: a bug in this package.
func unhandled(at string) error {
	return errorf(at, "member accepted but not converted (bug)")
}
