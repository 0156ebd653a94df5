// Package search is the node's full-text index (DESIGN.md, "Pages and
// search"): a bleve index in DIR/index over the latest version of every
// Thing the log holds — title, description, tags, categories, licences, the
// Thing's authors, its tracker's and node's names — with facets by licence,
// tag, author, tracker and trust level.
//
// The index is fed from the log by cursor: a feeder reads the Things that
// log entries changed from a Source (which node implements over the log),
// writes their documents in bleve batches, and stores the cursor of the
// last entry applied inside the index, in the same batch, so a restart
// resumes where it stopped and a crash loses nothing it cannot re-read. It
// can be rebuilt from the log at any time (Reindex).
//
// What changes without a log entry the index reads — trust levels and
// flags — is not baked into the documents: the caller passes them with
// each query (Standing), and they filter and facet at query time.
package search
