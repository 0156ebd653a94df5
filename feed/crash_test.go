package feed

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/thingtracker/ttn/internal/wait"
	"github.com/thingtracker/ttn/topics"
)

// TestPowerLoss simulates power loss with Pebble's crashable file system:
// while appends and publishes run, the file system is cloned as a crash
// would leave it (only synced data, plus a random part of the rest). Every
// append acknowledged before the crash must be in the clone, and the log
// opened on the clone must be consistent and keep working.
func TestPowerLoss(t *testing.T) {
	for round := range 4 {
		t.Run(fmt.Sprint(round), func(t *testing.T) { powerLoss(t, int64(round)) })
	}
}

func powerLoss(t *testing.T, seed int64) {
	fs := vfs.NewCrashableMem()
	l := openMem(t, fs, Config{MaxBatch: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var (
		mu    sync.Mutex
		acked []topics.ID
		wg    sync.WaitGroup
	)
	ack := func(id topics.ID) {
		mu.Lock()
		acked = append(acked, id)
		mu.Unlock()
	}
	authors := make([]*author, 4)
	chains := make([][]*topics.Announcement, len(authors))
	for i := range authors {
		authors[i] = newAuthor(t, byte(10+i))
		chains[i] = authors[i].chain(authors[i].tracker("x"), 300, "a")
	}
	stop := make(chan struct{})
	for i := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range chains[i] {
				select {
				case <-stop:
					return
				default:
				}
				if r, err := l.Append(ctx, a); err == nil && r.Status == Stored {
					ack(a.ID)
				}
			}
		}()
	}
	pub := newAuthor(t, 20)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ps, err := l.Publish(ctx, pub.key, []Draft{thingDraft(pub.tracker("p"), fmt.Sprint(i), "1", "T")})
			if err != nil {
				return
			}
			ack(ps[0].ID)
		}
	}()

	// Crash once a few hundred appends are acknowledged.
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	want := 200 + rng.IntN(400)
	wait.For(t, 15*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < want {
			return fmt.Errorf("only %d appends acknowledged", len(acked))
		}
		return nil
	})
	mu.Lock()
	before := append([]topics.ID(nil), acked...)
	mu.Unlock()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng})
	close(stop)
	wg.Wait()
	l.Close()

	r := openMem(t, crashed, Config{})
	for _, id := range before {
		if c, err := r.Lookup(id); err != nil || c == 0 {
			t.Fatalf("acknowledged %s lost in the crash (%v)", id, err)
		}
	}
	// The log is consistent: every cursor up to Last reads back and
	// validates, each chain's head covers its entries, and appending goes on.
	es, err := r.Entries(0, 1<<20)
	if err != nil || uint64(len(es)) != r.Last() {
		t.Fatalf("entries %d, last %d, %v", len(es), r.Last(), err)
	}
	for _, e := range es {
		if _, err := topics.Validate(e.Topic, e.Envelope, time.Time{}); err != nil {
			t.Fatalf("entry %d: %v", e.Cursor, err)
		}
	}
	hs, err := r.Heads()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Fork != nil || len(h.Gaps) != 0 || h.Seq != h.Max {
			t.Fatalf("head after crash = %+v", h)
		}
	}
	for i := range chains {
		for _, a := range chains[i] {
			if _, err := r.Append(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if h := head(t, r, authors[i].tracker("x")); h.Seq != 300 || h.Fork != nil {
			t.Fatalf("chain %d after catching up: %+v", i, h)
		}
	}
	if _, err := r.Publish(ctx, pub.key, []Draft{thingDraft(pub.tracker("p"), "after", "1", "T")}); err != nil {
		t.Fatalf("publish after crash: %v", err)
	}
}

// TestSIGKILL kills a real process that is appending (SIGKILL, no chance to
// clean up) and checks that every announcement it reported durable is in the
// log afterwards.
func TestSIGKILL(t *testing.T) {
	if os.Getenv("FEED_SIGKILL_DIR") != "" {
		sigkillChild(os.Getenv("FEED_SIGKILL_DIR"))
		return
	}
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILL$")
	cmd.Env = append(os.Environ(), "FEED_SIGKILL_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var printed []topics.ID
	sc := bufio.NewScanner(out)
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	for sc.Scan() && len(printed) < 500 {
		id, err := topics.ParseID(sc.Text())
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		printed = append(printed, id)
	}
	if len(printed) < 500 {
		t.Fatalf("child printed only %d IDs", len(printed))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	l, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, id := range printed {
		if c, err := l.Lookup(id); err != nil || c == 0 {
			t.Fatalf("%s was reported durable but is gone (%v)", id, err)
		}
	}
	if l.Last() < uint64(len(printed)) {
		t.Fatalf("last cursor %d < %d printed", l.Last(), len(printed))
	}
}

// sigkillChild publishes forever from several goroutines, printing each ID
// once Publish has returned (durable), until it is killed.
func sigkillChild(dir string) {
	l, err := Open(dir, Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	k := testKey(&testing.T{}, 7)
	raw, _ := topics.RawPublicKey(k.GetPublic())
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	for g := range 4 {
		go func() {
			tr := topics.DeriveTrackerID(raw, fmt.Sprint(g))
			for i := 0; ; i++ {
				ps, err := l.Publish(context.Background(), k, []Draft{thingDraft(tr, fmt.Sprint(i), "1", "T")})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(w, ps[0].ID)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}
