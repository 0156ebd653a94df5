package search

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/standard"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	bindex "github.com/blevesearch/bleve_index_api"

	"github.com/thingtracker/ttn/topics"
)

// ErrClosed is returned by the methods of a closed Index.
var ErrClosed = errors.New("search: closed")

// Config configures an Index. The zero value of each field means its
// default.
type Config struct {
	// Logger receives the feeder's messages. Nil discards them.
	Logger *slog.Logger
	// Follow runs a feeder that keeps the index current with the Source
	// until Close. False leaves feeding to CatchUp (the CLI, offline).
	Follow bool
	// BatchSize is how many log entries one step reads, and how many
	// documents one bleve batch holds at most. Zero means 1000.
	BatchSize int
	// FacetSize is how many values each facet shows, the most frequent.
	// Zero means 20.
	FacetSize int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Logger:    slog.New(slog.DiscardHandler),
		BatchSize: 1000, // a batch per ~1000 entries: analysis runs in parallel within one
		FacetSize: 20,   // values per facet, as a page shows them
	}
}

// withDefaults fills zero fields from DefaultConfig and reports every
// problem at once.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.FacetSize == 0 {
		c.FacetSize = d.FacetSize
	}
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("search: Config.BatchSize %d is negative", c.BatchSize))
	}
	if c.FacetSize < 0 {
		errs = append(errs, fmt.Errorf("search: Config.FacetSize %d is negative", c.FacetSize))
	}
	return c, errors.Join(errs...)
}

// ThingKey names a Thing: its tracker and its ID there.
type ThingKey struct {
	Tracker topics.TrackerID
	Thing   string
}

// docID is the bleve document ID of a Thing.
func (k ThingKey) docID() string { return k.Tracker.String() + "/" + k.Thing }

// parseDocID is the inverse of docID.
func parseDocID(id string) (ThingKey, error) {
	if len(id) < topics.TrackerIDLen+1 || id[topics.TrackerIDLen] != '/' {
		return ThingKey{}, fmt.Errorf("search: bad document id %q", id)
	}
	t, err := topics.ParseTrackerID(id[:topics.TrackerIDLen])
	return ThingKey{Tracker: t, Thing: id[topics.TrackerIDLen+1:]}, err
}

// Doc is what the index holds of a Thing: its latest shown version.
type Doc struct {
	Tracker topics.TrackerID
	Thing   string
	// Author is the node ID that announced the Thing; Announcement the ID
	// of its latest version's latest edit (what flags on it name).
	Author       string
	Announcement topics.ID
	Title        string
	Description  string
	Tags         []string
	Categories   []string
	Licences     []string
	People       []string // the Thing's authors' names
	TrackerName  string
	NodeName     string
}

// Changes are what some log entries change.
type Changes struct {
	// Things are the Things changed (one may be listed more than once).
	Things []ThingKey
	// Authors are nodes every Thing of which, as the index holds them, is
	// to be read again (a key rotation may have voided some: the log no
	// longer lists them).
	Authors []string
	// Next is the cursor of the last entry read (after when none).
	Next uint64
}

// Source is where the index reads the log: node implements it over its
// feed.Log. Its methods may be called concurrently.
type Source interface {
	// Changes reads at most limit log entries after cursor after and
	// returns what they change.
	Changes(ctx context.Context, after uint64, limit int) (Changes, error)
	// Doc returns a Thing's document, or nil when it is not shown (every
	// version retracted or voided, or not held).
	Doc(ctx context.Context, k ThingKey) (*Doc, error)
	// Last returns the cursor of the log's last entry.
	Last() uint64
	// Wait blocks until the log holds an entry after cursor, ctx is done
	// or the log closes.
	Wait(ctx context.Context, cursor uint64) error
}

// The index's fields.
const (
	fieldTitle        = "title"        // analysed, boosts a match
	fieldText         = "text"         // analysed: every text a query matches
	fieldLicence      = "licence"      // keyword, lower case; facet
	fieldTag          = "tag"          // keyword, lower case; facet
	fieldAuthor       = "author"       // keyword: node ID; facet
	fieldTracker      = "tracker"      // keyword: tracker ID; facet
	fieldAnnouncement = "announcement" // keyword: for flags on it
)

// cursorKey is the internal key under which the index keeps the cursor of
// the last log entry it applied.
var cursorKey = []byte("ttn.cursor")

// rebuildSuffix names the dir a Reindex builds in before it replaces the
// index.
const rebuildSuffix = ".rebuild"

// Index is the full-text index of one data dir. Its methods may be called
// concurrently.
type Index struct {
	cfg  Config
	path string
	src  Source

	mu  sync.RWMutex // guards idx: searches and batches read it, Reindex swaps it
	idx bleve.Index  // nil once closed

	feed   sync.Mutex // one writer at a time: the feeder, CatchUp, Reindex
	cursor atomic.Uint64
	docs   atomic.Uint64 // documents written, for Stats

	text, kw analysis.Analyzer

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens the index at path, creating it when missing, reading from
// src. With cfg.Follow, a feeder keeps it current until Close.
func Open(path string, src Source, cfg Config) (*Index, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("search: a Source is required")
	}
	if err := os.RemoveAll(path + rebuildSuffix); err != nil { // a Reindex cut off
		return nil, err
	}
	idx, err := openBleve(path)
	if err != nil {
		return nil, err
	}
	ix := &Index{cfg: cfg, path: path, src: src, idx: idx}
	if err := ix.loadCursor(); err != nil {
		idx.Close()
		return nil, err
	}
	m := idx.Mapping()
	ix.text, ix.kw = m.AnalyzerNamed(standard.Name), m.AnalyzerNamed(keyword.Name)
	if ix.text == nil || ix.kw == nil {
		idx.Close()
		return nil, errors.New("search: analyzers missing")
	}
	ix.ctx, ix.cancel = context.WithCancel(context.Background())
	if cfg.Follow {
		ix.wg.Add(1)
		go ix.follow()
	}
	return ix, nil
}

// runtimeConfig is scorch's: a batch returns once it is searchable, and
// is persisted in the background. The cursor travels in the same batch as
// its documents, so whatever a crash loses, the index re-reads.
var runtimeConfig = map[string]any{"unsafe_batch": true}

// openBleve opens the bleve index at path, or creates it.
func openBleve(path string) (bleve.Index, error) {
	idx, err := bleve.OpenUsing(path, runtimeConfig)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		if err = create(path); err == nil {
			idx, err = bleve.OpenUsing(path, runtimeConfig)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("search: %s: %w", path, err)
	}
	return idx, nil
}

// create creates an empty index at path, its mapping persisted (an unsafe
// batch would leave it in memory).
func create(path string) error {
	idx, err := bleve.NewUsing(path, newMapping(), bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, nil)
	if err != nil {
		return err
	}
	return idx.Close()
}

// persistTimeout bounds how long closing an index waits for its last
// batches to reach the disk.
const persistTimeout = time.Minute

// closeBleve persists what the index holds in memory, then closes it.
func closeBleve(idx bleve.Index) error {
	done := make(chan error, 1)
	b := idx.NewBatch()
	b.SetPersistedCallback(func(err error) { done <- err })
	err := idx.Batch(b)
	if err == nil {
		select {
		case err = <-done:
		case <-time.After(persistTimeout):
			err = errors.New("search: the index was not persisted in time; it will catch up from the log")
		}
	}
	return errors.Join(err, idx.Close())
}

// newMapping is the index's mapping: documents are built field by field
// (see build), so it only names the default analyzer queries use.
func newMapping() mapping.IndexMapping {
	m := bleve.NewIndexMapping()
	m.DefaultAnalyzer = standard.Name
	m.DefaultMapping.Dynamic = false
	return m
}

func (ix *Index) loadCursor() error {
	b, err := ix.idx.GetInternal(cursorKey)
	if err != nil {
		return fmt.Errorf("search: reading the cursor: %w", err)
	}
	switch len(b) {
	case 0:
		ix.cursor.Store(0)
	case 8:
		ix.cursor.Store(binary.BigEndian.Uint64(b))
	default:
		return fmt.Errorf("search: bad cursor %x", b)
	}
	return nil
}

// Behind returns how many log entries the index has yet to apply.
func (ix *Index) Behind() uint64 {
	last, c := ix.src.Last(), ix.cursor.Load()
	if last <= c {
		return 0
	}
	return last - c
}

// Stats is a snapshot of the index's counters.
type Stats struct {
	Cursor uint64 `json:"cursor"` // the last log entry applied
	Behind uint64 `json:"behind"` // log entries yet to apply
	Docs   uint64 `json:"docs"`   // documents written since Open
}

// Stats returns the index's counters.
func (ix *Index) Stats() Stats {
	return Stats{Cursor: ix.cursor.Load(), Behind: ix.Behind(), Docs: ix.docs.Load()}
}

// follow is the feeder: it applies what the log holds past the cursor, and
// waits for more.
func (ix *Index) follow() {
	defer ix.wg.Done()
	for {
		n, err := ix.step(ix.ctx)
		if ix.ctx.Err() != nil {
			return
		}
		if err != nil {
			ix.cfg.Logger.Warn("search index not fed", "cursor", ix.cursor.Load(), "err", err)
			select { // the log may recover (a full disk); try again later
			case <-time.After(time.Second):
			case <-ix.ctx.Done():
				return
			}
			continue
		}
		if n == 0 {
			if err := ix.src.Wait(ix.ctx, ix.cursor.Load()); err != nil {
				return // ctx done, or the log closed
			}
		}
	}
}

// step applies one read of the log past the cursor and returns how many
// entries it read.
func (ix *Index) step(ctx context.Context) (int, error) {
	ctx, cancel := ix.bound(ctx)
	defer cancel()
	ix.feed.Lock()
	defer ix.feed.Unlock()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.idx == nil {
		return 0, ErrClosed
	}
	return ix.apply(ctx, ix.idx, ix.cursor.Load(), &ix.cursor)
}

// apply reads the log after cursor from into idx, storing the new cursor
// in idx and in to. The caller holds ix.feed.
func (ix *Index) apply(ctx context.Context, idx bleve.Index, from uint64, to *atomic.Uint64) (int, error) {
	ch, err := ix.src.Changes(ctx, from, ix.cfg.BatchSize)
	if err != nil || ch.Next <= from {
		return 0, err
	}
	keys, next := ch.Things, ch.Next
	for _, a := range ch.Authors {
		held, err := authorDocs(ctx, idx, a)
		if err != nil {
			return 0, err
		}
		keys = append(keys, held...)
	}
	seen := make(map[ThingKey]struct{}, len(keys))
	uniq := keys[:0:0]
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			uniq = append(uniq, k)
		}
	}
	docs, err := ix.readDocs(ctx, uniq)
	if err != nil {
		return 0, err
	}
	b := idx.NewBatch()
	for i, k := range uniq {
		if docs[i] == nil {
			b.Delete(k.docID())
		} else if err := b.IndexAdvanced(docs[i]); err != nil {
			return 0, err
		}
		if b.Size() >= ix.cfg.BatchSize { // a node record may change many Things
			if err := idx.Batch(b); err != nil {
				return 0, err
			}
			ix.docs.Add(uint64(b.Size()))
			b.Reset()
		}
	}
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], next)
	b.SetInternal(cursorKey, c[:])
	if err := idx.Batch(b); err != nil {
		return 0, err
	}
	ix.docs.Add(uint64(b.Size() - 1))
	to.Store(next)
	return int(next - from), nil
}

// authorDocs returns the Things of an author that idx holds.
func authorDocs(ctx context.Context, idx bleve.Index, author string) ([]ThingKey, error) {
	q := bleve.NewTermQuery(author)
	q.SetField(fieldAuthor)
	var keys []ThingKey
	for from := 0; ; from += 1000 {
		req := bleve.NewSearchRequestOptions(q, 1000, from, false)
		req.SortBy([]string{"_id"})
		res, err := idx.SearchInContext(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			k, err := parseDocID(h.ID)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		if len(res.Hits) < 1000 {
			return keys, nil
		}
	}
}

// readDocs reads and builds the documents of keys (nil for a Thing no longer
// shown) on as many goroutines as there are cores: reading the log and
// building are most of the feeder's work, bleve's analysis the rest.
func (ix *Index) readDocs(ctx context.Context, keys []ThingKey) ([]*document.Document, error) {
	out := make([]*document.Document, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				d, err := ix.src.Doc(ctx, keys[i])
				if err != nil {
					errs[w] = fmt.Errorf("search: %s: %w", keys[i].docID(), err)
					return
				}
				if d != nil {
					out[i] = ix.build(d)
				}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(append(errs, ctx.Err())...)
}

// build turns a Doc into bleve's document, field by field: no reflection,
// no composite field, nothing stored but doc values for the facets.
func (ix *Index) build(d *Doc) *document.Document {
	k := ThingKey{Tracker: d.Tracker, Thing: d.Thing}
	doc := document.NewDocument(k.docID())
	text := func(name, v string) {
		doc.AddField(document.NewTextFieldCustom(name, nil, []byte(v), bindex.IndexField, ix.text))
	}
	kw := func(name string, vs ...string) {
		for i, v := range vs {
			if v != "" {
				doc.AddField(document.NewTextFieldCustom(name, []uint64{uint64(i)}, []byte(v), bindex.IndexField|bindex.DocValues, ix.kw))
			}
		}
	}
	text(fieldTitle, d.Title)
	var sb strings.Builder
	for _, s := range [][]string{{d.Thing, d.Title, d.Description}, d.Tags, d.Categories, d.Licences, d.People, {d.TrackerName, d.NodeName}} {
		for _, v := range s {
			sb.WriteString(v)
			sb.WriteByte('\n')
		}
	}
	text(fieldText, sb.String())
	kw(fieldLicence, lower(d.Licences)...)
	kw(fieldTag, lower(d.Tags)...)
	kw(fieldAuthor, d.Author)
	kw(fieldTracker, d.Tracker.String())
	if !d.Announcement.IsZero() {
		doc.AddField(document.NewTextFieldCustom(fieldAnnouncement, nil, []byte(d.Announcement.String()), bindex.IndexField, ix.kw))
	}
	return doc
}

// lower returns the values in lower case, once each.
func lower(vs []string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		v = strings.ToLower(v)
		dup := false
		for _, o := range out {
			dup = dup || o == v
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// CatchUp applies what the log holds until the index has reached the
// log's last entry as of the call, ctx is done or a read fails.
func (ix *Index) CatchUp(ctx context.Context) error {
	last := ix.src.Last()
	for ix.cursor.Load() < last {
		n, err := ix.step(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // the log holds nothing past the cursor (void entries at its end)
		}
	}
	return ctx.Err()
}

// Reindex rebuilds the index from the start of the log: it builds a new
// index beside the current one (which keeps answering), reads the whole
// log into it, and replaces the current one. The feeder waits meanwhile,
// and resumes from the new index's cursor.
func (ix *Index) Reindex(ctx context.Context) error {
	ctx, cancel := ix.bound(ctx)
	defer cancel()
	ix.feed.Lock()
	defer ix.feed.Unlock()
	tmp := ix.path + rebuildSuffix
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	idx, err := openBleve(tmp)
	if err != nil {
		return err
	}
	var cursor atomic.Uint64
	last := ix.src.Last()
	for cursor.Load() < last {
		n, err := ix.apply(ctx, idx, cursor.Load(), &cursor)
		if err == nil && n == 0 {
			break
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			idx.Close()
			return errors.Join(err, os.RemoveAll(tmp))
		}
	}
	if err := closeBleve(idx); err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.idx == nil {
		return errors.Join(ErrClosed, os.RemoveAll(tmp))
	}
	err = ix.idx.Close() // replaced: nothing of it to keep
	ix.idx = nil
	if err != nil {
		return err
	}
	if err := os.RemoveAll(ix.path); err != nil {
		return err
	}
	if err := os.Rename(tmp, ix.path); err != nil {
		return err
	}
	if ix.idx, err = openBleve(ix.path); err != nil {
		return err
	}
	ix.cursor.Store(cursor.Load())
	return nil
}

// bound returns ctx, also done when the index closes.
func (ix *Index) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ix.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// Close stops the feeder and closes the index. It is safe to call twice.
func (ix *Index) Close() error {
	ix.closeOnce.Do(func() {
		ix.cancel()
		ix.wg.Wait()
		ix.feed.Lock() // a CatchUp or Reindex under way finishes first
		defer ix.feed.Unlock()
		ix.mu.Lock()
		defer ix.mu.Unlock()
		if ix.idx != nil {
			ix.closeErr = closeBleve(ix.idx)
			ix.idx = nil
		}
	})
	return ix.closeErr
}
