package pusher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// MaxRecoveredEvents bounds the missed events a pusher:subscribe with since
// gets back: each is one @connections post, sent in order before the
// subscription_succeeded. A larger gap answers "recovered":false.
const MaxRecoveredEvents = 100

// historyLimits returns the history limits of a Pusher channel: the history
// rules (WS_HISTORY, wslocal -history) match its Pusher name, and its stream
// is kept under its store key, pusher/{name}, apart from protocol v1's.
// #server-to-user-{id} channels carry sends to one user and never have history.
func (h *Handler) historyLimits(ch string) (store.HistoryLimits, bool) {
	if strings.HasPrefix(ch, PrefixServerToUser) {
		return store.HistoryLimits{}, false
	}
	return h.m.HistoryLimits(ch)
}

// number stores an event frame of a history channel as the next publication
// of the channel's stream and returns the frame with its offset and epoch.
// Frames of other channels come back unchanged.
func (h *Handler) number(ctx context.Context, ch string, frame []byte) ([]byte, error) {
	lim, ok := h.historyLimits(ch)
	if !ok {
		return frame, nil
	}
	pos, err := h.m.AppendToStoredChannel(ctx, StoreChannel(ch), frame, lim)
	if err != nil {
		return nil, fmt.Errorf("number event on %s: %w", ch, err)
	}
	return WithPosition(frame, pos.Offset, pos.Epoch, nil)
}

// withHistory returns the frames that answer a subscribe: on a history
// channel the missed events after since (each with its offset and epoch,
// oldest first) and then reply with the stream's position, plus
// "recovered" when since was given; elsewhere reply alone, with
// "recovered":false when since was given.
func (h *Handler) withHistory(ctx context.Context, ch string, reply []byte, since *store.StreamPosition) ([][]byte, error) {
	lim, ok := h.historyLimits(ch)
	if !ok {
		if since == nil {
			return [][]byte{reply}, nil
		}
		var f Frame
		if err := json.Unmarshal(reply, &f); err != nil {
			return nil, fmt.Errorf("answer subscribe to %s: %w", ch, err)
		}
		f.Recovered = new(bool)
		return [][]byte{f.Encode()}, nil
	}
	pos, pubs, recovered, err := h.m.RecoverStoredChannel(ctx, StoreChannel(ch), since, MaxRecoveredEvents, lim)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(pubs)+1)
	for _, p := range pubs {
		ev, err := WithPosition(p.Data, p.Offset, pos.Epoch, nil)
		if err != nil {
			return nil, fmt.Errorf("recover %s: %w", ch, err)
		}
		out = append(out, ev)
	}
	var rec *bool
	if since != nil {
		rec = &recovered
	}
	reply, err = WithPosition(reply, pos.Offset, pos.Epoch, rec)
	if err != nil {
		return nil, fmt.Errorf("answer subscribe to %s: %w", ch, err)
	}
	return append(out, reply), nil
}
