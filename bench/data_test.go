package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// specThings returns n Things cycling through the TTN specification's own
// example tracker, each with its own id.
func specThings(n int) []*topics.Thing {
	b, err := os.ReadFile(filepath.Join("..", "internal", "ttnschema", "spec", "example-tracker.json"))
	if err != nil {
		panic(err)
	}
	doc, err := ttn.ParseDocument(b)
	if err != nil {
		panic(err)
	}
	out := make([]*topics.Thing, n)
	for i := range out {
		t := doc.Things[i%len(doc.Things)]
		t.ID = fmt.Sprintf("%s-%d", t.ID, i)
		out[i] = &t
	}
	return out
}

// oneKBThings returns n distinct Things whose announcements are about 1 KB.
func oneKBThings(n int) []*topics.Thing {
	out := make([]*topics.Thing, n)
	for i := range out {
		out[i] = &topics.Thing{
			ID: fmt.Sprintf("thing-%08d", i), Title: "Parametric cable clip", Version: "1",
			URL:         "https://example.org/things/cable-clip",
			Authors:     []topics.Person{{Name: "A. Maker", URL: "https://example.org/~maker"}},
			Licenses:    []string{"CC-BY-4.0"},
			Tags:        []string{"clip", "cable", "parametric"},
			Description: strings.Repeat("A clip that holds cables along a desk edge. ", 12)[:500],
		}
	}
	return out
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
