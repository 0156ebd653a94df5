// Package bench holds the cross-package benchmarks. Each reports its figure
// as a ratio against the bound it is measured against in the same run (raw
// ed25519 verification, a raw Pebble scan, bare NATS, FloodSub) and logs its
// configuration. See README.md for the current figures and commands.
package bench
