package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// HistoryRule opts the channels matching Pattern into history: every
// publish to them gets the next offset of the channel's stream and is kept
// (the latest Size messages, each for TTL) for recovery on resubscribe.
type HistoryRule struct {
	// Pattern is a path.Match glob over channel names ("chat-*").
	Pattern string
	// Size is how many of the latest messages are kept (1 to 10000).
	Size int
	// TTL is how long a message, and the stream after its last message, is kept.
	TTL time.Duration
}

// MaxHistorySize bounds HistoryRule.Size.
const MaxHistorySize = 10000

// MaxHistoryTTL bounds HistoryRule.TTL, as the module's history[].ttl: 10
// years.
const MaxHistoryTTL = 87600 * time.Hour

type historyRuleJSON struct {
	Pattern string `json:"pattern"`
	Size    int    `json:"size"`
	TTL     string `json:"ttl"`
}

// MarshalJSON writes {"pattern":..,"size":..,"ttl":"1h0m0s"}.
func (r HistoryRule) MarshalJSON() ([]byte, error) {
	return json.Marshal(historyRuleJSON{Pattern: r.Pattern, Size: r.Size, TTL: r.TTL.String()})
}

// UnmarshalJSON reads {"pattern":..,"size":..,"ttl":"1h"} and validates it.
func (r *HistoryRule) UnmarshalJSON(b []byte) error {
	var j historyRuleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("history rule: want {\"pattern\": string, \"size\": integer, \"ttl\": duration}: %w", err)
	}
	ttl, err := time.ParseDuration(j.TTL)
	if err != nil {
		return fmt.Errorf("history rule %q: ttl %q: want a Go duration such as 1h", j.Pattern, j.TTL)
	}
	*r = HistoryRule{Pattern: j.Pattern, Size: j.Size, TTL: ttl}
	return r.Validate()
}

// Validate reports a rule that cannot be used.
func (r HistoryRule) Validate() error {
	if _, err := path.Match(r.Pattern, ""); err != nil || r.Pattern == "" {
		return fmt.Errorf("history rule %q: pattern must be a non-empty glob (path.Match)", r.Pattern)
	}
	if r.Size < 1 || r.Size > MaxHistorySize {
		return fmt.Errorf("history rule %q: size %d: want 1 to %d", r.Pattern, r.Size, MaxHistorySize)
	}
	if r.TTL < time.Second || r.TTL > MaxHistoryTTL {
		return fmt.Errorf("history rule %q: ttl %s: want 1s to 87600h (10 years)", r.Pattern, r.TTL)
	}
	return nil
}

// ParseHistoryRule reads the wslocal flag form PATTERN:SIZE:TTL ("chat-*:100:1h").
func ParseHistoryRule(s string) (HistoryRule, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return HistoryRule{}, fmt.Errorf("history %q: want PATTERN:SIZE:TTL, e.g. chat-*:100:1h", s)
	}
	// Channel names may hold ':', so SIZE and TTL are the last two fields.
	pattern := strings.Join(parts[:len(parts)-2], ":")
	size, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		return HistoryRule{}, fmt.Errorf("history %q: size %q is not an integer", s, parts[len(parts)-2])
	}
	ttl, err := time.ParseDuration(parts[len(parts)-1])
	if err != nil {
		return HistoryRule{}, fmt.Errorf("history %q: ttl %q: want a Go duration such as 1h", s, parts[len(parts)-1])
	}
	r := HistoryRule{Pattern: pattern, Size: size, TTL: ttl}
	return r, r.Validate()
}

// HistoryRules are the history settings of a deployment; the first rule
// whose pattern matches a channel applies.
type HistoryRules []HistoryRule

// ParseHistoryRules reads WS_HISTORY: a JSON list of
// {"pattern":..,"size":..,"ttl":..}. An empty string means no history.
func ParseHistoryRules(s string) (HistoryRules, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var rs HistoryRules
	if err := json.Unmarshal([]byte(s), &rs); err != nil {
		return nil, fmt.Errorf("WS_HISTORY: %w", err)
	}
	return rs, nil
}

// Limits returns the history limits of channel and whether it has history.
func (rs HistoryRules) Limits(channel string) (store.HistoryLimits, bool) {
	for _, r := range rs {
		if ok, _ := path.Match(r.Pattern, channel); ok {
			return store.HistoryLimits{Size: r.Size, TTL: r.TTL}, true
		}
	}
	return store.HistoryLimits{}, false
}

// ErrNoHistory means Config.HistoryRules is set without Config.History.
var ErrNoHistory = errors.New("realtime: Config.HistoryRules needs Config.History")

// HistoryLimits returns the history limits of channel and whether it has history.
func (m *Manager) HistoryLimits(channel string) (store.HistoryLimits, bool) {
	return m.cfg.HistoryRules.Limits(channel)
}

// publishToHistory appends payload (a JSON value) to the channel's stream
// and sends it in the v1 envelope to the channel's members except exclude.
// The size and the sender are checked before the append, so a refused
// message takes no offset.
func (m *Manager) publishToHistory(ctx context.Context, channel string, payload json.RawMessage, lim store.HistoryLimits, exclude []string) (store.StreamPosition, sender.Report, error) {
	if n := protocol.HistoryMessageSize(channel, payload); n > sender.MaxPayload {
		return store.StreamPosition{}, sender.Report{}, fmt.Errorf("send to %s: the message envelope takes up to %d bytes (%s): %w (API Gateway's limit is %d)", channel, n, protocol.HistoryReserveText, sender.ErrTooLarge, sender.MaxPayload)
	}
	// A message that cannot be sent (no management endpoint known yet) takes
	// no offset either: a retry would store it twice, and a recovery would
	// hand out what was never delivered live.
	if _, _, err := m.senderAndEndpoint(endpointHint(ctx)); err != nil {
		return store.StreamPosition{}, sender.Report{}, fmt.Errorf("publish to %s: %w", channel, err)
	}
	pos, err := m.cfg.History.Append(ctx, channel, payload, lim)
	if err != nil {
		return store.StreamPosition{}, sender.Report{}, fmt.Errorf("publish to %s: %w", channel, err)
	}
	msg := protocol.HistoryMessage(channel, payload, pos.Offset, pos.Epoch)
	rep, err := m.sendPages(ctx, msg, exclude, func(fn store.PageFunc) error {
		return m.store.ChannelMembers(ctx, channel, fn)
	})
	return pos, rep, err
}

// maxRecoveryReply bounds a subscribed reply with publications (and a
// history reply): a route response travels as one frame.
const maxRecoveryReply = protocol.MaxFrame

// streamReply reads the channel's stream after since for a subscribed
// (recover) or history reply. For a subscribe with since, Recovered says
// whether every message after since.Offset is in the reply: false when the
// epoch differs, the gap is larger than the kept history, or the reply
// would pass 128 KB. A history reply keeps as many of the oldest messages
// after since as fit in limit and 128 KB.
// r carries the reply's type, channel and members.
func (m *Manager) streamReply(ctx context.Context, r protocol.StreamReply, since *protocol.Since, limit int, lim store.HistoryLimits) ([]byte, error) {
	typ, channel := r.Type, r.Channel
	from := uint64(0)
	if since != nil {
		from = since.Offset
	}
	if limit <= 0 || limit > lim.Size {
		limit = lim.Size
	}
	// Data past the reply's 128 KB cannot be in it: read no further.
	pos, pubs, err := m.cfg.History.ReadHistory(ctx, channel, from, limit, maxRecoveryReply, lim)
	if err != nil {
		return nil, err
	}
	r.Stream = &protocol.Since{Offset: pos.Offset, Epoch: pos.Epoch}
	if typ == replyHistory {
		if since != nil && since.Epoch != pos.Epoch {
			// Another stream: page it from its start.
			if _, pubs, err = m.cfg.History.ReadHistory(ctx, channel, 0, limit, maxRecoveryReply, lim); err != nil {
				return nil, err
			}
		}
		r.Publications = []protocol.Publication{}
		r.Publications = fitPublications(pubs, maxRecoveryReply-len(r.Encode()))
		return r.Encode(), nil
	}
	if since == nil {
		return r.Encode(), nil
	}
	recovered := since.Epoch == pos.Epoch && since.Offset <= pos.Offset && uint64(len(pubs)) == pos.Offset-since.Offset
	if recovered {
		r.Publications = fitPublications(pubs, -1)
		if b := r.Encode(); len(b) <= maxRecoveryReply {
			r.Recovered = ptrTrue()
			m.cfg.Metrics.Add(metrics.HistoryRecovered, 1)
			return r.Encode(), nil
		}
		r.Publications = nil
	}
	r.Recovered = new(bool)
	m.cfg.Metrics.Add(metrics.HistoryNotRecovered, 1)
	return r.Encode(), nil
}

const (
	replySubscribed = "subscribed"
	replyHistory    = "history"
)

func ptrTrue() *bool { t := true; return &t }

// fitPublications converts pubs, keeping the oldest whose encoding (escapes
// included) fits in budget bytes (budget < 0: all of them).
func fitPublications(pubs []store.Publication, budget int) []protocol.Publication {
	out := make([]protocol.Publication, 0, len(pubs))
	used := 0
	for _, p := range pubs {
		pub := protocol.Publication{Offset: p.Offset, Data: p.Data}
		if budget >= 0 {
			if used += protocol.PublicationSize(pub); used > budget {
				break
			}
		}
		out = append(out, pub)
	}
	return out
}

// publishHistoryFrame handles a client publish to a history channel: the
// message is stored, sent in the v1 envelope to the other members, and the
// published reply carries its offset and epoch.
func (m *Manager) publishHistoryFrame(ctx context.Context, req *Request, f protocol.Frame, lim store.HistoryLimits) ([]byte, error) {
	payload := protocol.Payload(f.Data)
	if n := protocol.HistoryMessageSize(f.Channel, payload); n > protocol.MaxFrame {
		return nil, protocol.Errorf(protocol.CodeTooLarge, "message envelope of up to %d bytes (%s) exceeds %d", n, protocol.HistoryReserveText, protocol.MaxFrame)
	}
	pos, rep, err := m.publishToHistory(ctx, f.Channel, payload, lim, []string{req.ConnectionID})
	if err != nil {
		return nil, err
	}
	m.log.InfoContext(ctx, "published", "connectionId", req.ConnectionID, "channel", f.Channel, "offset", pos.Offset,
		"delivered", rep.Delivered, "gone", rep.Gone, "failed", rep.Failed+rep.TooLarge+rep.Forbidden)
	m.emit(ctx, EventMessage, map[string]any{"connectionId": req.ConnectionID, "userId": req.UserID, "channel": f.Channel, "data": f.Data, "offset": pos.Offset, "epoch": pos.Epoch})
	return protocol.PublishedAt(f.Channel, pos.Offset, pos.Epoch), nil
}
