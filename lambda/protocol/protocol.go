// Package protocol is client protocol v1: the JSON frames a WebSocket client
// sends on the $default route and the replies it receives. See docs/protocol.md.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Actions a client may send.
const (
	ActionSubscribe   = "subscribe"
	ActionUnsubscribe = "unsubscribe"
	ActionPublish     = "publish"
	ActionPing        = "ping"
	ActionWhoami      = "whoami"
	// ActionHistory reads a history channel's stream (see history.go).
	ActionHistory = "history"
)

// IsAction reports whether name is one of the actions above, which $default
// answers: a custom route of that name would take its frames away.
func IsAction(name string) bool {
	switch name {
	case ActionSubscribe, ActionUnsubscribe, ActionPublish, ActionPing, ActionWhoami, ActionHistory:
		return true
	}
	return false
}

// Error codes of an error reply.
const (
	CodeBadRequest    = "bad_request"
	CodeUnknownAction = "unknown_action"
	CodeForbidden     = "forbidden"
	CodeNotSubscribed = "not_subscribed"
	CodeTooLarge      = "too_large"
	// CodeTooManyChannels refuses a subscribe that would take the connection
	// past its cap on channels (WS_MAX_CHANNELS_PER_CONNECTION, default 100).
	CodeTooManyChannels = "too_many_channels"
	CodeInternal        = "internal_error"
)

// MaxFrame is the largest frame API Gateway accepts from a client (128 KB).
const MaxFrame = 128 * 1024

// PrivatePrefix marks channels that only connections whose authorizer context
// allows them may join.
const PrivatePrefix = "private-"

var channelName = regexp.MustCompile(`^[A-Za-z0-9_\-=@,.;:]{1,164}$`)

// ValidChannel reports whether name is a legal channel name:
// 1 to 164 characters from [A-Za-z0-9_-=@,.;:].
func ValidChannel(name string) bool { return channelName.MatchString(name) }

// Frame is a parsed client frame.
type Frame struct {
	// Action is the frame's action; it selects the route on API Gateway.
	Action string `json:"action"`
	// Channel is the target of subscribe, unsubscribe and publish.
	Channel string `json:"channel,omitempty"`
	// Data is publish's payload, any JSON value, kept verbatim.
	Data json.RawMessage `json:"data,omitempty"`
	// Since is the stream position of subscribe (recovery) and history.
	Since *Since `json:"since,omitempty"`
	// Limit bounds the publications of a history reply (0: as many as fit).
	Limit int `json:"limit,omitempty"`
}

// Error is a protocol error: it becomes an error reply, and the connection stays open.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Message is a human-readable explanation, safe to show to the client.
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a protocol error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Parse decodes and validates a client frame. Every failure is an *Error with
// code bad_request, unknown_action or too_large.
func Parse(body []byte) (Frame, error) {
	if len(body) > MaxFrame {
		return Frame{}, Errorf(CodeTooLarge, "frame of %d bytes exceeds %d", len(body), MaxFrame)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return Frame{}, Errorf(CodeBadRequest, "frame must be a JSON object")
	}
	var f Frame
	actionRaw, ok := raw["action"]
	if !ok {
		return Frame{}, Errorf(CodeBadRequest, "missing field: action")
	}
	if err := json.Unmarshal(actionRaw, &f.Action); err != nil || f.Action == "" {
		return Frame{}, Errorf(CodeBadRequest, "field action must be a non-empty string")
	}
	switch f.Action {
	case ActionPing, ActionWhoami:
		return f, nil
	case ActionSubscribe, ActionUnsubscribe, ActionPublish, ActionHistory:
	default:
		return f, Errorf(CodeUnknownAction, "unknown action %q", truncate(f.Action, 64))
	}
	chRaw, ok := raw["channel"]
	if !ok {
		return f, Errorf(CodeBadRequest, "missing field: channel")
	}
	if err := json.Unmarshal(chRaw, &f.Channel); err != nil {
		return f, Errorf(CodeBadRequest, "field channel must be a string")
	}
	if !ValidChannel(f.Channel) {
		return f, Errorf(CodeBadRequest, "invalid channel name: 1 to 164 characters of [A-Za-z0-9_-=@,.;:]")
	}
	if f.Action == ActionPublish {
		data, ok := raw["data"]
		if !ok {
			return f, Errorf(CodeBadRequest, "missing field: data")
		}
		f.Data = data
	}
	if err := parseHistoryFields(raw, &f); err != nil {
		return f, err
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Reply is a frame the server sends to a client.
type Reply struct {
	// Type is subscribed, unsubscribed, published, message, pong, whoami or error.
	Type string `json:"type"`
	// Channel is set on channel replies and messages.
	Channel string `json:"channel,omitempty"`
	// Data is a channel message's payload.
	Data json.RawMessage `json:"data,omitempty"`
	// ConnectionID and UserID answer whoami; UserID is null when anonymous.
	ConnectionID string `json:"connectionId,omitempty"`
	// UserID is set only on whoami replies.
	UserID *string `json:"userId,omitempty"`
	// Code is an error reply's code (one of the Code* constants).
	Code string `json:"code,omitempty"`
	// Message is an error reply's human-readable explanation.
	Message string `json:"message,omitempty"`
}

// Encode marshals a reply. Replies are built from validated parts, so it cannot fail.
func (r Reply) Encode() []byte {
	b, err := json.Marshal(r)
	if err != nil { // only reachable with invalid Data, which Parse never yields
		b, _ = json.Marshal(Reply{Type: "error", Code: CodeInternal, Message: "could not encode reply"})
	}
	return b
}

// Subscribed answers a subscribe frame.
func Subscribed(ch string) []byte { return Reply{Type: "subscribed", Channel: ch}.Encode() }

// Unsubscribed answers an unsubscribe frame.
func Unsubscribed(ch string) []byte { return Reply{Type: "unsubscribed", Channel: ch}.Encode() }

// Published answers a publish frame once the message went out to the channel.
func Published(ch string) []byte { return Reply{Type: "published", Channel: ch}.Encode() }

// Pong answers a ping frame.
func Pong() []byte { return Reply{Type: "pong"}.Encode() }

// Whoami answers a whoami frame; userID "" is sent as null.
func Whoami(connectionID, userID string) []byte {
	type whoami struct {
		Type         string  `json:"type"`
		ConnectionID string  `json:"connectionId"`
		UserID       *string `json:"userId"`
	}
	w := whoami{Type: "whoami", ConnectionID: connectionID}
	if userID != "" {
		w.UserID = &userID
	}
	b, _ := json.Marshal(w)
	return b
}

// Message is what channel subscribers receive when a client publishes.
// data that is not a JSON value (plain text from Go code) is sent as a JSON
// string, as Payload makes it, never as an error reply.
func Message(ch string, data json.RawMessage) []byte {
	return Reply{Type: "message", Channel: ch, Data: Payload(data)}.Encode()
}

func compact(data json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return data
	}
	return buf.Bytes()
}

// ErrorReply encodes err as an error reply. A non-protocol error becomes
// internal_error with a generic message, so internal details never reach a client.
func ErrorReply(err error) []byte {
	var pe *Error
	if errors.As(err, &pe) {
		return Reply{Type: "error", Code: pe.Code, Message: pe.Message}.Encode()
	}
	return Reply{Type: "error", Code: CodeInternal, Message: "internal error"}.Encode()
}

// AllowsChannel reports whether patterns (the authorizer's comma-separated
// glob list, e.g. "private-user-42,private-team-*") allows joining channel.
// Public channels are always allowed. Globs follow path.Match ('*', '?', '[...]').
func AllowsChannel(patterns, channel string) bool {
	if !strings.HasPrefix(channel, PrivatePrefix) {
		return true
	}
	for _, p := range strings.Split(patterns, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if ok, err := path.Match(p, channel); err == nil && ok {
			return true
		}
	}
	return false
}
