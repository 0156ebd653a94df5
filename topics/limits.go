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
	MaxNodeTrackers   = 2000      // trackers a node record lists
	MaxSeq            = 1<<53 - 1 // largest seq (exactly representable in every JSON reader)
)
