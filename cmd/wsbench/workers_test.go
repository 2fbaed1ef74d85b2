package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPerInvocationValues(t *testing.T) {
	got, err := perInvocationValues("1, auto,4")
	require.NoError(t, err)
	assert.Equal(t, []int{1, perInvocationAuto, 4}, got)
	for _, bad := range []string{"0", "x", "", "1,,2", "-3", "Auto"} {
		_, err := perInvocationValues(bad)
		assert.Error(t, err, bad)
	}
}
