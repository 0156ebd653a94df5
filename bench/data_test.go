package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/feed"
	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/ttn"
)

// signed is an announcement ready to be received: its topic and bytes.
type signed struct {
	topic string
	raw   []byte
}

// signedAnnouncements signs n thing announcements spread over authors, each
// author's on its own tracker as one valid chain. Signing runs on every core.
func signedAnnouncements(b testing.TB, authors, n int, things func(n int) []*topics.Thing) []signed {
	b.Helper()
	keys := make([]crypto.PrivKey, authors)
	for i := range keys {
		k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, 32)))
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = k
	}
	ts := things(n)
	out := make([]signed, n)
	// Each author's chain is built in order (prev links), authors in parallel.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	now := topics.FormatTime(time.Now())
	for ai, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			raw, _ := topics.RawPublicKey(k.GetPublic())
			author, _ := topics.NodeID(k.GetPublic())
			tracker := topics.DeriveTrackerID(raw, "bench")
			var prev topics.ID
			seq := uint64(0)
			for i := ai; i < n; i += authors {
				seq++
				p := &topics.Payload{V: 1, Kind: topics.KindThing, Author: author, Tracker: tracker, Seq: seq, Prev: prev, Time: now, Thing: ts[i]}
				body, err := p.Marshal()
				if err != nil {
					b.Error(err)
					return
				}
				env, err := topics.Seal(k, topics.AnnouncementType, body)
				if err != nil {
					b.Error(err)
					return
				}
				out[i] = signed{topic: topics.TrackerTopic(tracker), raw: env}
				prev = topics.IDOf(env)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return out
}

// specThings returns n Things shaped as the TTN specification's own example
// tracker's (cycling through them: their fields, extensions and sizes), each
// with its own id and, as real ones, its own title, description, tags,
// URL, authors and licences (variedThing's).
func specThings(n int) []*topics.Thing {
	b, err := os.ReadFile(filepath.Join("..", "internal", "ttnschema", "spec", "example-tracker.json"))
	if err != nil {
		panic(err)
	}
	doc, err := ttn.ParseDocument(b)
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	words := newVocabulary(rng)
	out := make([]*topics.Thing, n)
	for i := range out {
		t := doc.Things[i%len(doc.Things)]
		v := variedThing(rng, words, i)
		t.ID = fmt.Sprintf("%s-%d", t.ID, i)
		t.Title, t.URL, t.Tags, t.Authors, t.Licenses = v.Title, v.URL, v.Tags, v.Authors, v.Licenses
		t.ThumbnailURLs = nil
		for j := range len(doc.Things[i%len(doc.Things)].ThumbnailURLs) {
			t.ThumbnailURLs = append(t.ThumbnailURLs, fmt.Sprintf("%s/images/%d.png", v.URL, j))
		}
		t.Description = words.text(rng, len(t.Description)) // the example's length, new words
		out[i] = &t
	}
	return out
}

// oneKBThings returns n distinct Things whose announcements average about
// 1 KB, varied as real ones are (variedThing).
func oneKBThings(n int) []*topics.Thing {
	rng := rand.New(rand.NewPCG(1, 1)) // deterministic: every run signs the same Things
	words := newVocabulary(rng)
	out := make([]*topics.Thing, n)
	for i := range out {
		out[i] = variedThing(rng, words, i)
	}
	return out
}

// vocabulary draws words as text does: a few very often, most rarely
// (Zipf's law), from common English words and many made-up ones, so that
// no two descriptions share more than real ones would.
type vocabulary struct {
	words  []string
	zipf   *rand.Zipf
	people []topics.Person // the authors Things are drawn from
}

func newVocabulary(rng *rand.Rand) *vocabulary {
	common := strings.Fields(`the a of and to in for with is it on that this by from as at be can or an are
		print printed printing holder mount case box bracket clip stand cover adapter part parts fits fit
		screw screws nut bolt M3 M4 PLA PETG TPU layer infill supports no needed use used using made
		designed remix original version new small large size mm inch wall base top bottom side easy`)
	syllables := strings.Fields("ka lo mi ne ro ta vu si pe de ba fo gu hi ji ku ly mo nu po qua re su ti vo wi xe yo za tran ble str gon ver pol lim")
	seen := map[string]bool{}
	v := &vocabulary{words: common}
	for len(v.words) < 4000 {
		var w strings.Builder
		for range 1 + rng.IntN(4) {
			w.WriteString(syllables[rng.IntN(len(syllables))])
		}
		if !seen[w.String()] {
			seen[w.String()] = true
			v.words = append(v.words, w.String())
		}
	}
	v.zipf = rand.NewZipf(rng, 1.1, 2, uint64(len(v.words)-1))
	for i := range 300 {
		first, last := v.words[rng.IntN(len(v.words))], v.words[rng.IntN(len(v.words))]
		name := strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:]
		v.people = append(v.people, topics.Person{Name: name,
			URL: fmt.Sprintf("https://%s/@%s%d", benchHosts[rng.IntN(len(benchHosts))], first+last, i)})
	}
	return v
}

func (v *vocabulary) word() string { return v.words[v.zipf.Uint64()] }

// tag is a word that is not one of the most common (no "the" as a tag).
func (v *vocabulary) tag() string {
	for {
		if i := v.zipf.Uint64(); i >= 30 {
			return v.words[i]
		}
	}
}

// text returns words, space-separated, about n bytes of them, in sentences.
func (v *vocabulary) text(rng *rand.Rand, n int) string {
	var b strings.Builder
	start := true
	for b.Len() < n {
		w := v.word()
		if start {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		start = rng.IntN(12) == 0
		if start {
			b.WriteString(". ")
		} else {
			b.WriteByte(' ')
		}
	}
	return strings.TrimSpace(b.String())
}

var (
	benchLicenses = []string{"CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC0-1.0", "MIT", "GPL-3.0-or-later", "CERN-OHL-S-2.0", "Apache-2.0"}
	benchHosts    = []string{"example.org", "makers.example.net", "things.example.com", "cad.example.io", "printables.example"}
)

// variedThing returns Thing i: a title of a few words, a description of 0
// to about 1,600 bytes (most near 260), 0 to 8 tags, 1 to 3 authors of 300,
// 1 or 2 licences, its own URL, a version of its own.
func variedThing(rng *rand.Rand, words *vocabulary, i int) *topics.Thing {
	title := words.text(rng, 8+rng.IntN(40))
	if len(title) > 80 {
		title = title[:80]
	}
	title = strings.TrimRight(title, " .")
	slug := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(title, ". ", "-"), " ", "-"))
	host := benchHosts[rng.IntN(len(benchHosts))]
	descLen := int(rng.NormFloat64()*250 + 260)
	if rng.IntN(10) == 0 {
		descLen = 1000 + rng.IntN(600) // a few long ones
	}
	t := &topics.Thing{
		ID:          fmt.Sprintf("thing-%08d", i),
		Title:       title,
		Version:     fmt.Sprint(1 + rng.IntN(5)),
		URL:         fmt.Sprintf("https://%s/things/%d-%s", host, 10000+rng.IntN(900000), slug),
		Licenses:    []string{benchLicenses[rng.IntN(len(benchLicenses))]},
		Description: words.text(rng, max(descLen, 0)),
	}
	if rng.IntN(8) == 0 {
		t.Licenses = append(t.Licenses, benchLicenses[rng.IntN(len(benchLicenses))])
	}
	authors := 1
	if rng.IntN(5) == 0 {
		authors += 1 + rng.IntN(2)
	}
	for range authors {
		t.Authors = append(t.Authors, words.people[rng.IntN(len(words.people))])
	}
	for range rng.IntN(9) {
		t.Tags = append(t.Tags, strings.ToLower(words.tag()))
	}
	slices.Sort(t.Tags)
	t.Tags = slices.Compact(t.Tags)
	return t
}

// fill validates anns and appends them to l, a thousand at a time.
func fill(b *testing.B, l *feed.Log, anns []signed) {
	b.Helper()
	var batch []*topics.Announcement
	for i, s := range anns {
		a, err := topics.Validate(s.topic, s.raw, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, a)
		if len(batch) == 1024 || i == len(anns)-1 {
			if _, err := l.AppendAll(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
