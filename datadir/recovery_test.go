package datadir

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/thingtracker/ttn/topics"
)

func TestRecoveryPhrase(t *testing.T) {
	phrase, commitment, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(phrase)
	if len(words) != 24 {
		t.Fatalf("phrase of %d words", len(words))
	}
	k, err := RecoveryKey(phrase)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := topics.RawPublicKey(k.GetPublic())
	if topics.Commitment(raw) != commitment {
		t.Error("the phrase's key does not match the commitment")
	}
	// Case and spacing do not matter.
	k2, err := RecoveryKey("  " + strings.ToUpper(strings.Join(words, "   ")) + "\n")
	if err != nil || !k2.Equals(k) {
		t.Errorf("the phrase in capitals, spaced: %v, same key %v", err, err == nil && k2.Equals(k))
	}
	other, _, err := NewRecoveryPhrase()
	if err != nil || other == phrase {
		t.Fatalf("a second phrase: %q %v", other, err)
	}
	swapped := append([]string{}, words...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	for name, bad := range map[string]string{
		"23 words":            strings.Join(words[:23], " "),
		"a word off the list": strings.Join(append([]string{"printer"}, words[1:]...), " "),
		"a bad checksum":      strings.Join(swapped, " "),
	} {
		if words[0] == words[1] && name == "a bad checksum" {
			continue
		}
		if _, err := RecoveryKey(bad); !errors.Is(err, ErrBadPhrase) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want ErrBadPhrase in one line", name, err)
		}
	}
}

func TestCommit(t *testing.T) {
	ctx := context.Background()
	c := openDir(t)
	if got, err := c.Commitment(); err != nil || got != "" {
		t.Fatalf("a new dir's commitment: %q %v", got, err)
	}
	_, first, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := nodeRecord(t, c).Payload.NodeInfo.Next; got != first {
		t.Errorf("node record next %q, want %q", got, first)
	}
	// Once only: a second commitment changes nothing.
	_, second, _ := NewRecoveryPhrase()
	last := c.Log.Last()
	if _, err := c.Commit(ctx, second); !errors.Is(err, ErrCommitted) {
		t.Fatalf("second commit: %v, want ErrCommitted", err)
	}
	unchanged(t, c, last, "a second commit")
	// Later node records repeat it.
	if _, err := c.CreateTracker(ctx, topics.TrackerInfo{Name: "jigs"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetProfile(ctx, Profile{Name: "Shed"}); err != nil {
		t.Fatal(err)
	}
	if got := nodeRecord(t, c).Payload.NodeInfo.Next; got != first {
		t.Errorf("latest node record next %q, want %q", got, first)
	}
	if got, err := c.Commitment(); err != nil || got != first {
		t.Errorf("commitment in force %q %v, want the first", got, err)
	}
}
