package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     Frame
		wantCode string
	}{
		{"subscribe", `{"action":"subscribe","channel":"news"}`, Frame{Action: "subscribe", Channel: "news"}, ""},
		{"unsubscribe", `{"action":"unsubscribe","channel":"a-b_c=d@e,f.g;h:i"}`, Frame{Action: "unsubscribe", Channel: "a-b_c=d@e,f.g;h:i"}, ""},
		{"publish keeps data verbatim", `{"action":"publish","channel":"news","data":{"a": [1, 2]}}`, Frame{Action: "publish", Channel: "news", Data: json.RawMessage(`{"a": [1, 2]}`)}, ""},
		{"publish null data", `{"action":"publish","channel":"news","data":null}`, Frame{Action: "publish", Channel: "news", Data: json.RawMessage(`null`)}, ""},
		{"ping", `{"action":"ping"}`, Frame{Action: "ping"}, ""},
		{"whoami ignores extra fields", `{"action":"whoami","x":1}`, Frame{Action: "whoami"}, ""},
		{"not json", `hello`, Frame{}, CodeBadRequest},
		{"json array", `[1,2]`, Frame{}, CodeBadRequest},
		{"json null", `null`, Frame{}, CodeBadRequest},
		{"missing action", `{"channel":"news"}`, Frame{}, CodeBadRequest},
		{"action not string", `{"action":5}`, Frame{}, CodeBadRequest},
		{"empty action", `{"action":""}`, Frame{}, CodeBadRequest},
		{"unknown action", `{"action":"dance"}`, Frame{Action: "dance"}, CodeUnknownAction},
		{"missing channel", `{"action":"subscribe"}`, Frame{Action: "subscribe"}, CodeBadRequest},
		{"channel not string", `{"action":"subscribe","channel":1}`, Frame{Action: "subscribe"}, CodeBadRequest},
		{"empty channel", `{"action":"subscribe","channel":""}`, Frame{Action: "subscribe"}, CodeBadRequest},
		{"channel with space", `{"action":"subscribe","channel":"a b"}`, Frame{Action: "subscribe", Channel: "a b"}, CodeBadRequest},
		{"channel with slash", `{"action":"subscribe","channel":"a/b"}`, Frame{Action: "subscribe", Channel: "a/b"}, CodeBadRequest},
		{"channel too long", `{"action":"subscribe","channel":"` + strings.Repeat("a", 165) + `"}`, Frame{Action: "subscribe", Channel: strings.Repeat("a", 165)}, CodeBadRequest},
		{"publish without data", `{"action":"publish","channel":"news"}`, Frame{Action: "publish", Channel: "news"}, CodeBadRequest},
		{"too large", `{"action":"publish","channel":"news","data":"` + strings.Repeat("x", MaxFrame) + `"}`, Frame{}, CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if tt.wantCode == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			var pe *Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.wantCode, pe.Code)
			assert.NotEmpty(t, pe.Message)
			assert.Equal(t, tt.want.Action, got.Action)
		})
	}
}

func TestValidChannelBoundary(t *testing.T) {
	assert.True(t, ValidChannel(strings.Repeat("z", 164)))
	assert.False(t, ValidChannel(strings.Repeat("z", 165)))
	assert.False(t, ValidChannel("é"))
	assert.False(t, ValidChannel("a*b"))
}

func TestReplies(t *testing.T) {
	assert.JSONEq(t, `{"type":"subscribed","channel":"news"}`, string(Subscribed("news")))
	assert.JSONEq(t, `{"type":"unsubscribed","channel":"news"}`, string(Unsubscribed("news")))
	assert.JSONEq(t, `{"type":"published","channel":"news"}`, string(Published("news")))
	assert.JSONEq(t, `{"type":"pong"}`, string(Pong()))
	assert.JSONEq(t, `{"type":"whoami","connectionId":"abc=","userId":"42"}`, string(Whoami("abc=", "42")))
	assert.JSONEq(t, `{"type":"whoami","connectionId":"abc=","userId":null}`, string(Whoami("abc=", "")))
	assert.JSONEq(t, `{"type":"message","channel":"news","data":{"a":[1,2]}}`, string(Message("news", json.RawMessage(`{"a": [1, 2]}`))))
	assert.JSONEq(t, `{"type":"message","channel":"news","data":"hello"}`, string(Message("news", json.RawMessage(`hello`))), "plain text from Go code: a JSON string")
	assert.JSONEq(t, `{"type":"error","code":"forbidden","message":"no"}`, string(ErrorReply(Errorf(CodeForbidden, "no"))))
	assert.JSONEq(t, `{"type":"error","code":"forbidden","message":"no"}`, string(ErrorReply(fmt.Errorf("hook: %w", Errorf(CodeForbidden, "no")))),
		"a wrapped protocol error keeps its code")
	assert.JSONEq(t, `{"type":"error","code":"internal_error","message":"internal error"}`, string(ErrorReply(assert.AnError)),
		"internal errors must not leak their text")
}

func TestAllowsChannel(t *testing.T) {
	tests := []struct {
		patterns, channel string
		want              bool
	}{
		{"", "news", true},
		{"", "private-x", false},
		{"private-user-42", "private-user-42", true},
		{"private-user-42", "private-user-43", false},
		{"private-team-*, private-user-42", "private-team-red", true},
		{" private-team-* ,", "private-team-", true},
		{"private-[ab]", "private-a", true},
		{"private-[", "private-[", false},
		{"*", "private-anything", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, AllowsChannel(tt.patterns, tt.channel), "%q allows %q", tt.patterns, tt.channel)
	}
}

// FuzzParse checks that any input either parses into a frame whose fields are
// valid for its action, or yields a protocol error; never a panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"action":"subscribe","channel":"news"}`, `{"action":"publish","channel":"n","data":[1,{"x":null}]}`,
		`{"action":"ping"}`, `{"action":"whoami"}`, `{"action":"unsubscribe","channel":"private-a"}`,
		`{}`, `[]`, `null`, `"x"`, `{"action":null}`, `{"action":"publish","channel":"n"}`, "\xff\xfe", `{"action":"subscribe","channel":"` + strings.Repeat("a", 200) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := Parse(body)
		if err != nil {
			var pe *Error
			if !assert.ErrorAs(t, err, &pe) {
				return
			}
			assert.Contains(t, []string{CodeBadRequest, CodeUnknownAction, CodeTooLarge}, pe.Code)
			return
		}
		switch fr.Action {
		case ActionPing, ActionWhoami:
		case ActionSubscribe, ActionUnsubscribe:
			assert.True(t, ValidChannel(fr.Channel))
		case ActionPublish:
			assert.True(t, ValidChannel(fr.Channel))
			assert.True(t, json.Valid(fr.Data))
			assert.True(t, json.Valid(Message(fr.Channel, fr.Data)))
		default:
			t.Fatalf("accepted unknown action %q", fr.Action)
		}
	})
}
