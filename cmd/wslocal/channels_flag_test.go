package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMaxChannelsPerConnectionFlag(t *testing.T) {
	noEnv := func(string) string { return "" }
	o, err := parseFlags(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 100, o.maxChannelsPerConnection)
	cfg, err := o.serverConfig(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 100, cfg.MaxChannelsPerConnection)

	o, err = parseFlags([]string{"-max-channels-per-connection", "7"}, noEnv, io.Discard)
	require.NoError(t, err)
	cfg, err = o.serverConfig(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.MaxChannelsPerConnection)

	o, err = parseFlags(nil, func(k string) string {
		if k == "WSLOCAL_MAX_CHANNELS_PER_CONNECTION" {
			return "12"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 12, o.maxChannelsPerConnection)

	for _, bad := range []string{"0", "-1"} {
		_, err := parseFlags([]string{"-max-channels-per-connection", bad}, noEnv, io.Discard)
		require.ErrorContains(t, err, "-max-channels-per-connection", bad)
	}
	_, err = parseFlags([]string{"-max-channels-per-connection", "many"}, noEnv, io.Discard)
	require.Error(t, err)
}
