package realtime

import (
	"context"
	"fmt"
	"math"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Other protocol faces (package pusher) handle API Gateway events themselves
// and reach the Manager through these methods. They keep their channels in
// the store under names protocol v1 cannot spell, so the faces never share a
// channel by accident.

// EventEndpoint returns the management endpoint an event came through,
// https://{domainName}/{stage}, or "" when the event does not say.
func EventEndpoint(ev events.APIGatewayWebsocketProxyRequest) string {
	if ev.RequestContext.DomainName == "" || ev.RequestContext.Stage == "" {
		return ""
	}
	return "https://" + ev.RequestContext.DomainName + "/" + ev.RequestContext.Stage
}

// WithEndpoint returns ctx carrying endpoint as the management endpoint hint
// (used when Config.ManagementEndpoint is empty), as Handle does for its events.
func WithEndpoint(ctx context.Context, endpoint string) context.Context {
	return withEndpointHint(ctx, endpoint)
}

// SendToStoredChannel is SendToChannel for a channel key as stored, without
// protocol v1's name check: the members are streamed and sent through the
// same throttle-aware sender and distributed fan-out.
func (m *Manager) SendToStoredChannel(ctx context.Context, channel string, data []byte, exclude ...string) (sender.Report, error) {
	if channel == "" {
		return sender.Report{}, fmt.Errorf("send to stored channel: %w", ErrInvalidChannel)
	}
	return m.sendPages(ctx, data, exclude, func(fn store.PageFunc) error {
		return m.store.ChannelMembers(ctx, channel, fn)
	})
}

// CloseConnection closes the connection through the management API without
// touching the registry: its $disconnect removes it.
func (m *Manager) CloseConnection(ctx context.Context, id string) error {
	if !store.ValidConnectionID(id) {
		return fmt.Errorf("close connection %.*q: %w", store.MaxConnectionIDLength, id, store.ErrInvalidID)
	}
	s, err := m.senderFor(endpointHint(ctx))
	if err != nil {
		return err
	}
	if err := s.Poster().Delete(ctx, id); err != nil {
		return fmt.Errorf("close connection %s: %w", id, err)
	}
	return nil
}

// AppendToStoredChannel stores payload as the next publication of a face's
// history channel (its store key, such as pusher/chat-1) and returns the
// stream's position after it: the publication's offset and the epoch. It is
// one write transaction, as for a protocol v1 publish.
func (m *Manager) AppendToStoredChannel(ctx context.Context, channel string, payload []byte, lim store.HistoryLimits) (store.StreamPosition, error) {
	if m.cfg.History == nil {
		return store.StreamPosition{}, fmt.Errorf("append to history of %s: %w", channel, ErrNoHistory)
	}
	pos, err := m.cfg.History.Append(ctx, channel, payload, lim)
	if err != nil {
		return store.StreamPosition{}, fmt.Errorf("append to history of %s: %w", channel, err)
	}
	return pos, nil
}

// positionOnly, as the since of ReadHistory, reads a stream's position and
// none of its publications.
const positionOnly = math.MaxUint64 - 1

// RecoverStoredChannel reads a face's history channel (its store key) for a
// subscriber: the stream's current position and, when since is given, the
// publications after since.Offset, oldest first. recovered reports whether
// they are all of them: false when since is nil, its epoch is not the
// stream's, or the gap is larger than the kept history or than maxPubs. The
// HistoryRecovered and HistoryNotRecovered metrics count the outcomes of
// calls with since, as for protocol v1.
func (m *Manager) RecoverStoredChannel(ctx context.Context, channel string, since *store.StreamPosition, maxPubs int, lim store.HistoryLimits) (pos store.StreamPosition, pubs []store.Publication, recovered bool, err error) {
	if m.cfg.History == nil {
		return pos, nil, false, fmt.Errorf("recover %s: %w", channel, ErrNoHistory)
	}
	from, limit := uint64(positionOnly), 1
	if since != nil {
		from, limit = since.Offset, min(maxPubs, lim.Size)
	}
	pos, pubs, err = m.cfg.History.ReadHistory(ctx, channel, from, limit, 0, lim)
	if err != nil {
		return store.StreamPosition{}, nil, false, fmt.Errorf("recover %s: %w", channel, err)
	}
	if since == nil {
		return pos, nil, false, nil
	}
	recovered = since.Epoch == pos.Epoch && since.Offset <= pos.Offset && uint64(len(pubs)) == pos.Offset-since.Offset
	if !recovered {
		m.cfg.Metrics.Add(metrics.HistoryNotRecovered, 1)
		return pos, nil, false, nil
	}
	m.cfg.Metrics.Add(metrics.HistoryRecovered, 1)
	return pos, pubs, true, nil
}
