package httpapi

import (
	"reflect"
	"strings"
	"testing"
)

// TestConfigDefaults: a zero Config gets DefaultConfig's values, so that the
// defaults are typed once; every problem is reported at once.
func TestConfigDefaults(t *testing.T) {
	got, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if got.Logger == nil {
		t.Fatal("Logger left nil")
	}
	got.Logger, want.Logger = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("zero Config with defaults:\n got %+v\nwant %+v", got, want)
	}
	if err := DefaultConfig().Check(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}

	err = Config{Addr: "nowhere", MaxFeeds: -1}.Check()
	for _, want := range []string{"httpapi: Addr", "httpapi: MaxFeeds"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}
