package protocol

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// MaxHistoryLimit bounds the limit of a history frame.
const MaxHistoryLimit = 1000

// Since is a client's stream position on a history channel: the offset of
// the last message it received and the stream's epoch.
type Since struct {
	// Offset is the last offset the client received.
	Offset uint64 `json:"offset"`
	// Epoch is the stream epoch the offset belongs to.
	Epoch string `json:"epoch"`
}

// parseHistoryFields reads since (subscribe, history) and limit (history).
func parseHistoryFields(raw map[string]json.RawMessage, f *Frame) error {
	if f.Action != ActionSubscribe && f.Action != ActionHistory {
		return nil
	}
	if v, ok := raw["since"]; ok {
		since, err := ParseSince(v)
		if err != nil {
			return err
		}
		f.Since = since
	}
	if v, ok := raw["limit"]; ok && f.Action == ActionHistory {
		if err := json.Unmarshal(v, &f.Limit); err != nil || f.Limit < 0 || f.Limit > MaxHistoryLimit {
			return Errorf(CodeBadRequest, "field limit must be an integer from 0 to %d", MaxHistoryLimit)
		}
	}
	return nil
}

// ParseSince reads a since field: {"offset": <integer>, "epoch": <string>},
// or null (nil). Anything else, a string offset or a missing field among
// them, is a *Error with CodeBadRequest. The Pusher protocol's since is read
// by the same rules.
func ParseSince(v json.RawMessage) (*Since, error) {
	if string(v) == "null" {
		return nil, nil
	}
	var s struct {
		Offset json.RawMessage `json:"offset"`
		Epoch  *string         `json:"epoch"`
	}
	if err := json.Unmarshal(v, &s); err != nil || len(s.Offset) == 0 || string(s.Offset) == "null" || s.Epoch == nil {
		return nil, Errorf(CodeBadRequest, "field since must be {\"offset\": <integer>, \"epoch\": <string>}")
	}
	// A JSON number only: json.Number would take "5", a string, too.
	off, err := strconv.ParseUint(string(s.Offset), 10, 64)
	if err != nil {
		return nil, Errorf(CodeBadRequest, "since.offset must be a non-negative integer")
	}
	return &Since{Offset: off, Epoch: *s.Epoch}, nil
}

// Publication is one message of a history channel in a subscribed or
// history reply.
type Publication struct {
	// Offset numbers the message in its channel's stream.
	Offset uint64 `json:"offset"`
	// Data is the message payload.
	Data json.RawMessage `json:"data"`
}

// Payload returns data as a JSON value for an envelope: a JSON document
// compacted, anything else (a server API send of plain text) as a JSON string.
func Payload(data []byte) json.RawMessage {
	if json.Valid(data) {
		return compact(data)
	}
	b, _ := json.Marshal(string(data))
	return b
}

// HistoryMessage is the v1 envelope every delivery on a history channel
// arrives in: {"type":"message","channel":..,"data":..,"offset":..,"epoch":..}.
// data that is not a JSON value is sent as a JSON string (Payload).
func HistoryMessage(ch string, data json.RawMessage, offset uint64, epoch string) []byte {
	b, _ := json.Marshal(struct {
		Type    string          `json:"type"`
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
		Offset  uint64          `json:"offset"`
		Epoch   string          `json:"epoch"`
	}{"message", ch, Payload(data), offset, epoch})
	return b
}

// HistoryMessageOverhead is how many bytes HistoryMessage adds around the
// channel name and data at most (the largest offset and a 64-byte epoch).
//
// Deprecated: it counts data and channel as given, but the envelope escapes
// <, > and & in them (six bytes each); use HistoryMessageSize.
const HistoryMessageOverhead = 64 + 20 + 64

// maxEpoch is as long as an epoch gets (the stores make 16 hex digits).
var maxEpoch = strings.Repeat("f", 64)

// HistoryReserveText says, in a too_large error, what HistoryMessageSize
// counts beyond the message as it will be: the offset and epoch are not
// known before the message is stored, and it must fit whatever they are.
const HistoryReserveText = "counting 20 digits for its offset and 64 bytes for its epoch"

// HistoryMessageSize is the size of HistoryMessage(ch, data, offset, epoch)
// at most, whatever the offset and epoch: the envelope encoded with the
// largest offset and a 64-byte epoch, escapes included. The stores' epochs
// are 16 bytes and offsets start at 1 digit, so the envelope as sent is up
// to 67 bytes smaller.
func HistoryMessageSize(ch string, data json.RawMessage) int {
	return len(HistoryMessage(ch, data, math.MaxUint64, maxEpoch))
}

// PublicationSize is the number of bytes p adds to a reply's publications.
func PublicationSize(p Publication) int {
	b, _ := json.Marshal(p)
	return len(b) + 1 // and the comma
}

// Member is one user of a presence channel.
type Member struct {
	// UserID is the authorizer's userId.
	UserID string `json:"userId"`
}

// StreamReply is a subscribed reply with the extras of history and
// presence channels, or a history reply. Fields left nil are omitted.
type StreamReply struct {
	// Type is "subscribed" or "history".
	Type string
	// Channel is the channel.
	Channel string
	// Recovered, on a subscribe with since, tells whether Publications hold
	// every message after it.
	Recovered *bool
	// Stream is the stream's current position (history channels only).
	Stream *Since
	// Publications are messages after since, oldest first; a non-nil empty
	// slice is sent as [].
	Publications []Publication
	// Members lists a presence channel's users.
	Members []Member
}

// Encode marshals the reply: {"type","channel","recovered","epoch","offset","publications","members"}.
func (r StreamReply) Encode() []byte {
	out := struct {
		Type         string         `json:"type"`
		Channel      string         `json:"channel"`
		Recovered    *bool          `json:"recovered,omitempty"`
		Epoch        *string        `json:"epoch,omitempty"`
		Offset       *uint64        `json:"offset,omitempty"`
		Publications *[]Publication `json:"publications,omitempty"`
		Members      *[]Member      `json:"members,omitempty"`
	}{Type: r.Type, Channel: r.Channel, Recovered: r.Recovered}
	if r.Stream != nil {
		out.Epoch, out.Offset = &r.Stream.Epoch, &r.Stream.Offset
	}
	if r.Publications != nil {
		out.Publications = &r.Publications
	}
	if r.Members != nil {
		out.Members = &r.Members
	}
	b, _ := json.Marshal(out)
	return b
}

// MemberEvent tells a presence channel's members that a user joined
// ("member_joined", its first connection in) or left ("member_left", its
// last connection out).
func MemberEvent(typ, ch, userID string) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		UserID  string `json:"userId"`
	}{typ, ch, userID})
	return b
}

// Presence event types.
const (
	MemberJoined = "member_joined"
	MemberLeft   = "member_left"
)

// PresencePrefix marks presence channels: joining one needs a user.
const PresencePrefix = "presence-"

// PublishedAt answers a publish on a history channel with the message's
// position: {"type":"published","channel":..,"offset":..,"epoch":..}.
func PublishedAt(ch string, offset uint64, epoch string) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		Offset  uint64 `json:"offset"`
		Epoch   string `json:"epoch"`
	}{"published", ch, offset, epoch})
	return b
}
