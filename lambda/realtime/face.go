package realtime

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

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
	s, err := m.senderFor(endpointHint(ctx))
	if err != nil {
		return err
	}
	if err := s.Poster().Delete(ctx, id); err != nil {
		return fmt.Errorf("close connection %s: %w", id, err)
	}
	return nil
}
