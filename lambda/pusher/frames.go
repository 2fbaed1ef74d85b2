package pusher

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Protocol is the Pusher Channels protocol version this package speaks.
const Protocol = 7

// ActivityTimeout is the default activity_timeout announced in
// pusher:connection_established, in seconds: a client pings after this long
// without traffic. API Gateway's idle timeout (10 minutes) is well above it.
const ActivityTimeout = 120

// Events of the protocol.
const (
	EventConnectionEstablished = "pusher:connection_established"
	EventError                 = "pusher:error"
	EventPing                  = "pusher:ping"
	EventPong                  = "pusher:pong"
	EventSubscribe             = "pusher:subscribe"
	EventUnsubscribe           = "pusher:unsubscribe"
	EventSignin                = "pusher:signin"
	EventSigninSuccess         = "pusher:signin_success"
	EventSubscriptionError     = "pusher:subscription_error"
	EventCacheMiss             = "pusher:cache_miss"
	EventSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	EventMemberAdded           = "pusher_internal:member_added"
	EventMemberRemoved         = "pusher_internal:member_removed"
)

// Close and error codes (Pusher's ranges: 4000-4099 the client does not
// reconnect, 4100-4199 it reconnects after a backoff, 4200-4299 it
// reconnects at once).
const (
	CodeSSLOnly          = 4000
	CodeAppNotFound      = 4001
	CodeAppDisabled      = 4003
	CodeOverQuota        = 4004
	CodeProtocolTooOld   = 4007
	CodeUnauthorized     = 4009
	CodeOverCapacity     = 4100
	CodeGenericReconnect = 4200
	CodePongNotReceived  = 4201
	CodeClosedInactivity = 4202
	CodeClientEvent      = 4301
	CodeInvalidMessage   = 4300 // soketi's code for frames that are not a Pusher message
)

// Prefixes that select a channel's kind.
const (
	PrefixPrivate          = "private-"
	PrefixPrivateEncrypted = "private-encrypted-"
	PrefixPresence         = "presence-"
	PrefixCache            = "cache-"
	PrefixPrivateCache     = "private-cache-"
	PrefixEncryptedCache   = "private-encrypted-cache-"
	PrefixPresenceCache    = "presence-cache-"
	PrefixServerToUser     = "#server-to-user-"
	PrefixClientEvent      = "client-"
)

// MaxChannelName is the longest channel name Pusher accepts.
const MaxChannelName = 164

var channelName = regexp.MustCompile(`^[A-Za-z0-9_\-=@,.;]+$`)

// ValidChannel reports whether name is a legal Pusher channel name: up to 164
// characters of [A-Za-z0-9_-=@,.;], or #server-to-user-{id}.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelName {
		return false
	}
	if id, ok := strings.CutPrefix(name, PrefixServerToUser); ok {
		return channelName.MatchString(id)
	}
	return channelName.MatchString(name)
}

// IsPrivate reports whether the channel needs an auth signature without channel data.
func IsPrivate(ch string) bool { return strings.HasPrefix(ch, PrefixPrivate) }

// IsPresence reports whether the channel is a presence channel.
func IsPresence(ch string) bool { return strings.HasPrefix(ch, PrefixPresence) }

// IsCache reports whether the channel keeps its last event (cache-,
// private-cache-, private-encrypted-cache-, presence-cache-: Pusher's four).
func IsCache(ch string) bool {
	for _, p := range []string{PrefixCache, PrefixPrivateCache, PrefixEncryptedCache, PrefixPresenceCache} {
		if strings.HasPrefix(ch, p) {
			return true
		}
	}
	return false
}

// Frame is a protocol message in either direction. Data is kept raw: clients
// send objects, the server sends JSON-encoded strings.
type Frame struct {
	// Event is the event name.
	Event string `json:"event"`
	// Channel is set for channel events.
	Channel string `json:"channel,omitempty"`
	// Data is the payload, verbatim.
	Data json.RawMessage `json:"data,omitempty"`
	// UserID is set on client events relayed on presence channels.
	UserID string `json:"user_id,omitempty"`
	// Offset places an event of a history channel in the channel's stream;
	// on pusher_internal:subscription_succeeded it is the stream's position
	// (docs/pusher.md, "History and recovery").
	Offset *uint64 `json:"offset,omitempty"`
	// Epoch names the stream Offset belongs to.
	Epoch string `json:"epoch,omitempty"`
	// Recovered answers a pusher:subscribe that carried since: whether every
	// missed event was sent before this subscription_succeeded.
	Recovered *bool `json:"recovered,omitempty"`
}

// WithPosition returns frame (an encoded Frame) with offset and epoch set, as
// events of history channels are delivered; recovered, when not nil, is set
// too (subscription_succeeded after a since).
func WithPosition(frame []byte, offset uint64, epoch string, recovered *bool) ([]byte, error) {
	var f Frame
	if err := json.Unmarshal(frame, &f); err != nil {
		return nil, fmt.Errorf("number pusher frame at %d: %w", offset, err)
	}
	f.Offset, f.Epoch, f.Recovered = &offset, epoch, recovered
	return f.Encode(), nil
}

// ParseFrame decodes a client message.
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("parse pusher frame: %w", err)
	}
	if f.Event == "" {
		return f, fmt.Errorf("parse pusher frame: no event")
	}
	return f, nil
}

// DataObject decodes a client frame's data into v, whether it came as an
// object or as a JSON-encoded string.
func (f Frame) DataObject(v any) error {
	raw := f.Data
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, v)
}

// Encode marshals a frame.
func (f Frame) Encode() []byte { return marshal(f) }

// marshal is json.Marshal without HTML escaping: Pusher sends data as given,
// and "<b>" escaped as "\u003cb\u003e" is six times longer and not what a
// client comparing frames expects.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// stringData encodes v as JSON and then as a JSON string: the server always
// sends data as a string. Structs keep their fields in the order Pusher
// sends them.
func stringData(v any) json.RawMessage { return quote(string(marshal(v))) }

func quote(s string) json.RawMessage { return marshal(s) }

// ConnectionEstablished is the first frame of every connection; activityTimeout
// is in seconds (ActivityTimeout unless configured):
// {"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}.
func ConnectionEstablished(socketID string, activityTimeout int) []byte {
	return Frame{Event: EventConnectionEstablished, Data: stringData(struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}{socketID, activityTimeout})}.Encode()
}

// ErrorFrame is pusher:error with a code and message.
func ErrorFrame(code int, message string) []byte {
	return Frame{Event: EventError, Data: stringData(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message})}.Encode()
}

// Pong answers pusher:ping.
func Pong() []byte { return Frame{Event: EventPong, Data: quote("{}")}.Encode() }

// SubscriptionSucceeded answers a public or private subscribe.
func SubscriptionSucceeded(ch string) []byte {
	return Frame{Event: EventSubscriptionSucceeded, Channel: ch, Data: quote("{}")}.Encode()
}

// Member is one user of a presence channel.
type Member struct {
	// UserID is channel_data.user_id.
	UserID string `json:"user_id"`
	// UserInfo is channel_data.user_info, verbatim (may be absent).
	UserInfo json.RawMessage `json:"user_info,omitempty"`
}

// PresenceSucceeded answers a presence subscribe with the member list.
func PresenceSucceeded(ch string, members []Member) []byte {
	ids := make([]string, 0, len(members))
	hash := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		ids = append(ids, m.UserID)
		info := m.UserInfo
		if len(info) == 0 {
			info = json.RawMessage("null")
		}
		hash[m.UserID] = info
	}
	type presence struct {
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
		Count int                        `json:"count"`
	}
	data := struct {
		Presence presence `json:"presence"`
	}{presence{ids, hash, len(ids)}}
	return Frame{Event: EventSubscriptionSucceeded, Channel: ch, Data: stringData(data)}.Encode()
}

// MemberAdded tells a presence channel's subscribers that a user joined.
func MemberAdded(ch string, m Member) []byte {
	return Frame{Event: EventMemberAdded, Channel: ch, Data: stringData(m)}.Encode()
}

// MemberRemoved tells a presence channel's subscribers that a user left.
func MemberRemoved(ch, userID string) []byte {
	return Frame{Event: EventMemberRemoved, Channel: ch, Data: stringData(map[string]string{"user_id": userID})}.Encode()
}

// SubscriptionError answers a refused subscribe: type AuthError, or
// LimitReached for status 403 (a limit) and 413 (a reply too large).
func SubscriptionError(ch string, status int, message string) []byte {
	typ := "AuthError"
	if status == 403 || status == 413 {
		typ = "LimitReached"
	}
	return Frame{Event: EventSubscriptionError, Channel: ch, Data: stringData(struct {
		Type   string `json:"type"`
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{typ, message, status})}.Encode()
}

// CacheMiss tells a subscriber of a cache channel that nothing is cached.
func CacheMiss(ch string) []byte { return Frame{Event: EventCacheMiss, Channel: ch}.Encode() }

// SigninSuccess answers pusher:signin.
func SigninSuccess(userData string) []byte {
	return Frame{Event: EventSigninSuccess, Data: stringData(map[string]string{"user_data": userData})}.Encode()
}

// ChannelEvent is an event sent to a channel's subscribers; data is sent as
// a string, as the HTTP API received it.
func ChannelEvent(ch, event, data string) []byte {
	return Frame{Event: event, Channel: ch, Data: quote(data)}.Encode()
}

// SocketID derives a socket id ("digits.digits", what the server SDKs
// accept) from a connection id. It does not depend on the connection id's
// format; attempt > 0 gives another id for the rare collision, which the
// alias claim detects.
func SocketID(connectionID string, attempt int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", connectionID, attempt)))
	a := binary.BigEndian.Uint64(sum[0:8]) % 1_000_000_000_000
	b := binary.BigEndian.Uint64(sum[8:16]) % 1_000_000_000_000
	return fmt.Sprintf("%d.%d", a, b)
}

var socketIDPattern = regexp.MustCompile(`^\d+\.\d+$`)

// ValidSocketID reports whether s matches ^\d+\.\d+$.
func ValidSocketID(s string) bool { return socketIDPattern.MatchString(s) }
