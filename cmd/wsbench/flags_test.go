package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBadFlagsAreRefused: a value the stand-in, the client or the workers
// cannot honour stops the command before it runs, naming the flag (the
// tables print the flags, so a run must use what they say).
func TestBadFlagsAreRefused(t *testing.T) {
	cases := []struct {
		run  func([]string) error
		args []string
		want string
	}{
		{runFanout, []string{"-dead", "2"}, "-dead 2"},
		{runFanout, []string{"-dead", "-0.5"}, "-dead -0.5"},
		{runFanout, []string{"-latency", "-5ms"}, "-latency -5ms"},
		{runFanout, []string{"-burst", "-3"}, "-burst -3"},
		{runFanout, []string{"-concurrency", "-7"}, "-concurrency -7"},
		{runFanout, []string{"-max-rate", "-5"}, "-max-rate -5"},
		{runFanout, []string{"-timebox", "-1s"}, "-timebox -1s"},
		{runFanout, []string{"-client-gogc", "abc"}, "-client-gogc"},
		{runFanout, []string{"-server-gogc", "-1"}, "-server-gogc"},
		{runFanout, []string{"-post", "fast"}, "-post"},
		{runWorkers, []string{"-n", "-5"}, "-n -5"},
		{runWorkers, []string{"-per-invocation", "11"}, "-per-invocation \"11\""},
		{runWorkers, []string{"-batch", "0"}, "-batch 0"},
		{runWorkers, []string{"-batch", "1001"}, "-batch 1001"},
		{runWorkers, []string{"-dead", "1"}, "-dead 1"},
		{runSmall, []string{"-concurrency", "0"}, "-concurrency 0"},
		{runSmall, []string{"-burst", "0"}, "-burst 0"},
		{runServe, []string{"-rate", "-1"}, "-rate -1"},
		{runClient, []string{"-n", "0"}, "-n 0"},
	}
	for _, tc := range cases {
		err := tc.run(tc.args)
		if assert.Error(t, err, "%v", tc.args) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}
