//go:build !race

package natsapi_test

const raceEnabled = false
