package protocol

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHistoryFields(t *testing.T) {
	f, err := Parse([]byte(`{"action":"subscribe","channel":"chat-1","since":{"offset":41,"epoch":"ab12"}}`))
	require.NoError(t, err)
	assert.Equal(t, &Since{Offset: 41, Epoch: "ab12"}, f.Since)
	f, err = Parse([]byte(`{"action":"history","channel":"chat-1","since":{"offset":18446744073709551615,"epoch":""},"limit":50}`))
	require.NoError(t, err)
	assert.Equal(t, &Since{Offset: 18446744073709551615, Epoch: ""}, f.Since, "offsets are exact up to 2^64-1")
	assert.Equal(t, 50, f.Limit)
	f, err = Parse([]byte(`{"action":"subscribe","channel":"chat-1","since":null}`))
	require.NoError(t, err)
	assert.Nil(t, f.Since)

	for _, body := range []string{
		`{"action":"subscribe","channel":"c","since":5}`,
		`{"action":"subscribe","channel":"c","since":{"offset":1.5,"epoch":"e"}}`,
		`{"action":"subscribe","channel":"c","since":{"offset":-1,"epoch":"e"}}`,
		`{"action":"subscribe","channel":"c","since":{"epoch":"e"}}`,
		`{"action":"subscribe","channel":"c","since":{"offset":1,"epoch":7}}`,
		`{"action":"subscribe","channel":"c","since":{"offset":"5","epoch":"e"}}`,
		`{"action":"history","channel":"c","since":{"offset":"5","epoch":"e"}}`,
		`{"action":"subscribe","channel":"c","since":{"offset":null,"epoch":"e"}}`,
		`{"action":"subscribe","channel":"c","since":{"offset":18446744073709551616,"epoch":"e"}}`,
		`{"action":"history","channel":"c","limit":1001}`,
		`{"action":"history","channel":"c","limit":"ten"}`,
		`{"action":"history"}`,
	} {
		_, err := Parse([]byte(body))
		var pe *Error
		require.ErrorAs(t, err, &pe, body)
		assert.Equal(t, CodeBadRequest, pe.Code, body)
	}
}

func TestHistoryFrames(t *testing.T) {
	assert.JSONEq(t, `{"type":"message","channel":"chat-1","data":{"a":1},"offset":7,"epoch":"e"}`,
		string(HistoryMessage("chat-1", Payload([]byte(`{ "a": 1 }`)), 7, "e")))
	assert.JSONEq(t, `{"type":"message","channel":"chat-1","data":"hello","offset":7,"epoch":"e"}`,
		string(HistoryMessage("chat-1", json.RawMessage(`hello`), 7, "e")), "plain text from Go code: a JSON string")
	assert.JSONEq(t, `"not json"`, string(Payload([]byte("not json"))), "a server send of plain text becomes a JSON string")
	assert.JSONEq(t, `{"type":"published","channel":"c","offset":3,"epoch":"e"}`, string(PublishedAt("c", 3, "e")))
	assert.JSONEq(t, `{"type":"member_left","channel":"presence-x","userId":"u"}`, string(MemberEvent(MemberLeft, "presence-x", "u")))
	yes := true
	assert.Equal(t, `{"type":"subscribed","channel":"c","recovered":true,"epoch":"e","offset":0,"publications":[]}`,
		string(StreamReply{Type: "subscribed", Channel: "c", Recovered: &yes, Stream: &Since{Epoch: "e"}, Publications: []Publication{}}.Encode()),
		"field order and an explicit empty list")
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(StreamReply{Type: "subscribed", Channel: "c"}.Encode(), &m))
	assert.Len(t, m, 2)
}
