// Package ttn reads Thing Tracker Network (TTN) documents into the strict
// wire types of package topics.
//
// The TTN specification exists in two schema files that disagree, and real
// documents follow either. Import is tolerant of every form the
// specification itself uses and strict about everything else:
//
//   - Each pair of spellings below is accepted; both in one object is an
//     error naming the two (for a pair that differs only in case, the strict
//     JSON check below reports it).
//     Document: trackersCount or trackers-count (derived, checked to be a
//     number and then ignored, as thingsCount is); trackersTraversalDepth or
//     trackersTraversal-depth. Instruction: imageUrls or images. BOM entry:
//     thumbnailUrl or thumbnailURL; xBomMetadata or xBOMMetadata (kept under
//     the name xBomMetadata).
//   - version (document and Thing) and a BOM partNumber may be a string or a
//     number; a number keeps its literal text exactly as written ("0.0"
//     stays "0.0"). A Thing without a version gets DefaultVersion.
//   - Every x*Metadata member (see topics.IsExtensionName) is kept verbatim
//     at every level where it appears; import never drops one.
//   - A null member counts as absent, except an x*Metadata one: it is kept.
//   - The input must be strict JSON (topics.CheckStrictJSON): valid UTF-8, no
//     duplicate names, no names that differ only in case. Any other unknown
//     member is an error naming its path, such as
//     `things[1]: unknown member "Title" (did you mean "title"?)`. Each
//     converted topics.Thing and topics.TrackerInfo must pass its Check
//     method; a document needs an "id" (the tracker's name), a Thing an "id"
//     and a "title".
//
// Besides the specification's members, import accepts what the project's
// wire types add: a document "title", Thing "version" and "parents", and BOM
// "size" and "sha256", so that what the project exports imports again.
//
// Errors are one line, prefixed "ttn: ". Functions in this package do no
// I/O beyond the reader they are given and may be called concurrently.
package ttn
