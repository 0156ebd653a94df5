package hostport

import "testing"

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		in, host string
		port     int
		err      string
	}{
		{"127.0.0.1:4222", "127.0.0.1", 4222, ""},
		{"[::1]:0", "::1", 0, ""},
		{":7070", "", 7070, ""},
		{"localhost", "", 0, `"localhost": want HOST:PORT`},
		{"127.0.0.1:x", "", 0, `"127.0.0.1:x": bad port`},
		{"127.0.0.1:65536", "", 0, `"127.0.0.1:65536": bad port`},
		{"127.0.0.1:-1", "", 0, `"127.0.0.1:-1": bad port`},
	} {
		host, port, err := Split(c.in)
		if host != c.host || port != c.port || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("Split(%q) = %q, %d, %v; want %q, %d, %s", c.in, host, port, err, c.host, c.port, c.err)
		}
	}
}
