// Package flags defines the flags the announcer and subscriber commands
// share and how every flag gets its value: from the command line, else from
// the environment (TTN_ and the flag name in capitals, dashes as
// underscores: --max-trackers is TTN_MAX_TRACKERS), else from the
// configuration file (--config, by default DIR/config: one "flag value" per
// line, # comments).
package flags

import (
	"flag"
	"os"
	"path/filepath"

	"github.com/peterbourgon/ff/v3"
)

// Common holds the flags every command has.
type Common struct {
	Data   string // the data dir
	Config string // the configuration file

	configSet bool // --config or TTN_CONFIG was given
}

// DefaultDataDir is ~/.ttn, or ./ttn-data without a home directory.
func DefaultDataDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".ttn")
	}
	return "ttn-data"
}

// Register adds --data and --config to fs.
func (c *Common) Register(fs *flag.FlagSet) {
	c.Data = DefaultDataDir()
	c.Config = filepath.Join(c.Data, "config")
	fs.Var(dataValue{c}, "data", "data `DIR`: identity, log, configuration")
	fs.Var(configValue{c}, "config", "configuration `FILE` (default DIR/config)")
}

// Options returns how ff resolves a command's flags.
func (c *Common) Options() []ff.Option {
	return []ff.Option{
		ff.WithEnvVarPrefix("TTN"),
		ff.WithEnvVarSplit(","),
		ff.WithConfigFileVia(&c.Config),
		ff.WithConfigFileParser(ff.PlainParser),
		ff.WithAllowMissingConfigFile(true),
		ff.WithIgnoreUndefined(true),
	}
}

// dataValue sets the data dir and, unless a configuration file was named,
// the configuration file in it.
type dataValue struct{ c *Common }

func (v dataValue) String() string {
	if v.c == nil {
		return ""
	}
	return v.c.Data
}

func (v dataValue) Set(s string) error {
	v.c.Data = s
	if !v.c.configSet {
		v.c.Config = filepath.Join(s, "config")
	}
	return nil
}

type configValue struct{ c *Common }

func (v configValue) String() string {
	if v.c == nil {
		return ""
	}
	return v.c.Config
}

func (v configValue) Set(s string) error {
	v.c.Config, v.c.configSet = s, true
	return nil
}
