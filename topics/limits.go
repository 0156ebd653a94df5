package topics

// Payload limits. Every implementation applies the same ones, so a payload is
// valid everywhere or nowhere. Lengths are in bytes of UTF-8. The envelope
// limit (MaxEnvelopeSize) bounds the total; these bound single fields so that
// no one field can crowd out the rest or burden an index.
const (
	MaxIDLen          = 256       // thing id, tracker name, part numbers
	MaxVersionLen     = 64        // thing version
	MaxTitleLen       = 512       // titles and names
	MaxTextLen        = 4096      // URLs, e-mail addresses, dates, short text
	MaxDescriptionLen = 32 << 10  // descriptions and instruction text
	MaxListLen        = 1024      // entries in any list
	MaxMetadataLen    = 16 << 10  // one x*Metadata value, encoded
	MaxSeq            = 1<<53 - 1 // largest seq (exactly representable in every JSON reader)

	// MaxNoteLen bounds the note of a trust or flag record: one line shown
	// beside the record, and a node holds many records of many authors.
	MaxNoteLen = 512
)

// Node record limits. A node record is one announcement, so its largest
// form must fit the envelope with room to spare. Written by Marshal, with the
// longest chain fields (about 300 bytes) and the envelope's framing, key and
// signature (about 150), the worst case is:
//
//	trackers          1,000 × 29 (a quoted tracker ID and a comma) = 29,000
//	follows.trackers    500 × 29                                   = 14,500
//	follows.nodes       100 × 55 (a quoted node ID and a comma)    =  5,500
//	name, description, url (512 + 1,024 + 4,096), each byte
//	  escaped to two ("\"" or "\\")                                = 11,264
//
// 60,264 bytes and the chain fields and framing: under 61 KiB of the 64 KiB
// (TestNodeRecordWorstCase signs it). x*Metadata members are bounded by the
// envelope only, as everywhere.
const (
	// MaxNodeTrackers bounds the trackers a node record lists: the node's
	// own, so a thousand is generous. (It was 2,000 before node records had
	// follows; at 2,000 the list alone took 58,000 bytes.)
	MaxNodeTrackers = 1000
	// MaxNodeFollowedTrackers bounds node_info.follows.trackers: what a user
	// follows by choice, published for others to follow in turn; a
	// promiscuous indexer's automatic follows are not for publishing.
	MaxNodeFollowedTrackers = 500
	// MaxNodeFollowedNodes bounds node_info.follows.nodes; a node ID costs
	// twice a tracker ID.
	MaxNodeFollowedNodes = 100
	// MaxNodeDescriptionLen bounds node_info.description: a profile's few
	// lines, not a document.
	MaxNodeDescriptionLen = 1024
)
