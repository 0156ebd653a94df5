package gossip

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/thingtracker/ttn/topics"
)

type nopStore struct{}

func (nopStore) Has(topics.ID) (bool, error) { return false, nil }
func (nopStore) Append(context.Context, *topics.Announcement) (topics.Outcome, error) {
	return topics.Accept, nil
}

// TestConfigDefaults: a zero Config, given its required fields, gets
// DefaultConfig's values, so that the defaults are typed once.
func TestConfigDefaults(t *testing.T) {
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Config{Key: k, Store: nopStore{}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Key, want.Store = k, nopStore{}
	// Functions and the logger compare by what they are, not by value.
	if got.Logger == nil || got.Now == nil {
		t.Fatal("Logger or Now left nil")
	}
	got.Logger, got.Now, want.Logger, want.Now = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("zero Config with defaults:\n got %+v\nwant %+v", got, want)
	}
	// DefaultConfig itself passes.
	d := DefaultConfig()
	d.Key, d.Store = k, nopStore{}
	if _, err := d.withDefaults(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

// TestConfigReportsEveryProblem: New reports every problem of a Config at
// once, not the first only.
func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := Config{
		Listen:      []string{"not a multiaddr"},
		GossipAddr:  "nowhere",
		Join:        []string{"no-port"},
		Keyring:     [][]byte{make([]byte, 7)},
		MaxPeers:    -1,
		MaxTrackers: MaxTrackersLimit + 1,
		AuthorRate:  -1,
		Heartbeat:   -1,
	}.withDefaults()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Key is required", "Store is required", "listen address", "gossip address",
		"join address", "keyring key 1", "MaxPeers", "MaxTrackers 10001", "AuthorRate", "Heartbeat"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "gossip: ") {
			t.Errorf("error without the package prefix: %q", line)
		}
	}
}
