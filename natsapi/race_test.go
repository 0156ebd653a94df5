//go:build race

package natsapi_test

const raceEnabled = true
