// Command notifier is an example plugin: it prints a line for every new
// Thing (or new version, or edit) that carries a tag, as a node's embedded
// NATS server announces them, verifying each envelope. It keeps its place
// in a cursor file, so that after a restart, or after the server cut it off
// for reading too slowly, it catches up through ttn.api.history and misses
// nothing.
//
//	go run ./examples/notifier --tag fun
//
// It only needs a NATS client and the Entry shape; any language can do the
// same.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go"

	"github.com/thingtracker/ttn/topics"
	"github.com/thingtracker/ttn/view"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "nats", "nats://127.0.0.1:4222", "the node's NATS server `URL`")
	flag.StringVar(&cfg.token, "token", os.Getenv("NATS_TOKEN"), "NATS `TOKEN`, if the node requires one (default $NATS_TOKEN)")
	flag.StringVar(&cfg.tag, "tag", "", "only Things with this `TAG` (any case); empty: every Thing")
	flag.StringVar(&cfg.cursorFile, "cursor", "notifier.cursor", "`FILE` that keeps the last entry seen")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

type config struct {
	url, token, tag, cursorFile string
}

// notifier follows the node's log: history first, then the live feed.
type notifier struct {
	cfg    config
	nc     *nats.Conn
	out    io.Writer
	cursor uint64 // the last log entry handled
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	cursor, err := readCursor(cfg.cursorFile)
	if err != nil {
		return err
	}
	// After a reconnection (the server cuts a plugin that reads too
	// slowly), catch up on what was missed.
	reconnected := make(chan struct{}, 1)
	opts := []nats.Option{nats.Name("ttn notifier example"), nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		})}
	if cfg.token != "" {
		opts = append(opts, nats.Token(cfg.token))
	}
	nc, err := nats.Connect(cfg.url, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	n := &notifier{cfg: cfg, nc: nc, out: out, cursor: cursor}

	// Subscribe first, then read history: whatever arrives live meanwhile
	// waits in the channel, and entries history already gave are skipped.
	live := make(chan *nats.Msg, 4096)
	if _, err := nc.ChanSubscribe("ttn.ann.>", live); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := n.catchUp(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-reconnected:
			if err := n.catchUp(ctx); err != nil {
				return err
			}
		case m := <-live:
			c, err := strconv.ParseUint(m.Header.Get("Ttn-Cursor"), 10, 64)
			if err != nil || c <= n.cursor {
				continue // history had it
			}
			if c > n.cursor+1 {
				// Cursors have no holes: messages were lost (the channel
				// overflowed, or the server cut us off). History has them.
				if err := n.catchUp(ctx); err != nil {
					return err
				}
				if c <= n.cursor {
					continue
				}
			}
			env, err := base64.StdEncoding.DecodeString(m.Header.Get("Ttn-Envelope"))
			if err != nil {
				return fmt.Errorf("entry %d: Ttn-Envelope: %w", c, err)
			}
			if err := n.handle(c, env); err != nil {
				return err
			}
		}
	}
}

// catchUp reads ttn.api.history after the cursor until it reaches the end.
func (n *notifier) catchUp(ctx context.Context) error {
	for {
		body, _ := json.Marshal(map[string]any{"after": n.cursor, "limit": 500})
		m, err := n.nc.RequestWithContext(ctx, "ttn.api.history", body)
		if err != nil {
			return fmt.Errorf("ttn.api.history: %w", err)
		}
		if reason := m.Header.Get("Nats-Service-Error"); reason != "" {
			return fmt.Errorf("ttn.api.history: %s", reason)
		}
		var page struct {
			Entries []jsontext.Value `json:"entries"`
		}
		if err := json.Unmarshal(m.Data, &page); err != nil {
			return fmt.Errorf("ttn.api.history: %w", err)
		}
		if len(page.Entries) == 0 {
			return nil
		}
		for _, raw := range page.Entries {
			var e view.Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("ttn.api.history: %w", err)
			}
			if err := n.handle(e.Cursor, e.Envelope); err != nil {
				return err
			}
		}
	}
}

// handle verifies one entry, prints it if it is a Thing with the tag, and
// moves the cursor past it.
func (n *notifier) handle(cursor uint64, envelope []byte) error {
	a, err := topics.Validate("", envelope, time.Time{})
	if err != nil {
		// Not signed as it should be: say so and never show it.
		fmt.Fprintf(os.Stderr, "entry %d: refused: %v\n", cursor, err)
	} else if t := a.Payload.Thing; t != nil && hasTag(t.Tags, n.cfg.tag) {
		fmt.Fprintf(n.out, "new: %q version %s (thing %s on %s by %s) %s\n",
			t.Title, t.Version, t.ID, a.Payload.Tracker, a.Payload.Author, t.URL)
	}
	n.cursor = cursor
	return writeCursor(n.cfg.cursorFile, cursor)
}

func hasTag(tags []string, tag string) bool {
	if tag == "" {
		return true
	}
	for _, t := range tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

func readCursor(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	c, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cursor file %s: %w", path, err)
	}
	return c, nil
}

// writeCursor replaces the cursor file atomically: a crash leaves the old
// cursor or the new one, and at worst one line is printed again.
func writeCursor(path string, c uint64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cursor-")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(tmp, "%d\n", c)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
