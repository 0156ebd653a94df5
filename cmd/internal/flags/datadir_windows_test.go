package flags

import (
	"testing"
)

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("LocalAppData", `C:\Users\maker\AppData\Local`)
	if got, want := DefaultDataDir(), `C:\Users\maker\AppData\Local\TTN`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	t.Setenv("LocalAppData", "")
	if got := DefaultDataDir(); got != "ttn-data" {
		t.Errorf("without LocalAppData: got %q, want ttn-data", got)
	}
}
