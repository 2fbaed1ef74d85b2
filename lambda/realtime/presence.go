package realtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// subscribed answers a subscribe the store accepted: on a presence channel
// it records the user (announcing member_joined to the others on the user's
// first connection) and lists the members; on a history channel it carries
// the stream's position and, with since, the recovered messages. History is
// read after the join, so nothing published in between is missed (the
// client drops duplicates by offset).
func (m *Manager) subscribed(ctx context.Context, req *Request, f protocol.Frame, presence, added bool) ([]byte, error) {
	r := protocol.StreamReply{Type: replySubscribed, Channel: f.Channel}
	if presence {
		members, err := m.joinPresence(ctx, req, f.Channel)
		if err != nil {
			if added {
				m.undoJoin(ctx, req.ConnectionID, f.Channel)
			}
			return nil, err
		}
		r.Members = members
		if n := len(r.Encode()); n > maxRecoveryReply {
			// The reply is the route response, one frame: past 128 KB API
			// Gateway cannot deliver it, and the client would wait for it
			// in vain. Refuse the subscribe instead, and take it back when
			// it made the membership: a member that was there before (a
			// subscribe repeated, ?channels= at connect, the publisher's
			// join) stays a member, only without the list.
			if !added {
				return nil, protocol.Errorf(protocol.CodeTooLarge, "presence channel %s has %d members: the subscribed reply listing them would take %d bytes, over %d (you stay a member)", f.Channel, len(members), n, maxRecoveryReply)
			}
			m.leavePresence(ctx, req.ConnectionID, f.Channel)
			m.undoJoin(ctx, req.ConnectionID, f.Channel)
			return nil, protocol.Errorf(protocol.CodeTooLarge, "presence channel %s has %d members: the subscribed reply listing them would take %d bytes, over %d", f.Channel, len(members), n, maxRecoveryReply)
		}
	}
	lim, history := m.cfg.HistoryRules.Limits(f.Channel)
	if !history {
		if f.Since != nil {
			r.Recovered = new(bool)
		}
		if r.Recovered == nil && r.Members == nil {
			return protocol.Subscribed(f.Channel), nil
		}
		return r.Encode(), nil
	}
	return m.streamReply(ctx, r, f.Since, 0, lim)
}

// joinPresence is enterPresence for a subscribe, then the members it answers with.
func (m *Manager) joinPresence(ctx context.Context, req *Request, channel string) ([]protocol.Member, error) {
	exp := m.cfg.Now().Add(m.cfg.TTL)
	if c, err := m.store.GetConnection(ctx, req.ConnectionID); err == nil {
		exp = c.ExpiresAt
	}
	if err := m.enterPresence(ctx, req.ConnectionID, req.UserID, channel, exp); err != nil {
		return nil, err
	}
	users, err := m.cfg.Presence.PresenceUsers(ctx, channel)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Member, 0, len(users))
	for _, u := range users {
		out = append(out, protocol.Member{UserID: u.UserID})
	}
	return out, nil
}

// enterPresence records userID's connection id as a member of channel until
// exp (the connection's expiry) and, on the user's first connection there,
// tells the others member_joined.
//
// A $disconnect racing it leaves the presence channels among the memberships
// its removal reads and deletes (handleDisconnect). A membership it deleted
// before the member was recorded here would leave the member behind, listed
// until it expires (hours), so enterPresence then checks the membership
// (one key lookup): when it is gone, the connection leaves at once
// (member_left after its member_joined) and the join fails with
// store.ErrNotFound.
func (m *Manager) enterPresence(ctx context.Context, id, userID, channel string, exp time.Time) error {
	first, err := m.cfg.Presence.JoinPresence(ctx, channel, store.PresenceMember{ConnectionID: id, UserID: userID, ExpiresAt: exp}, 0)
	if err != nil {
		return err
	}
	if first {
		if _, err := m.sendPages(ctx, protocol.MemberEvent(protocol.MemberJoined, channel, userID), []string{id}, func(fn store.PageFunc) error {
			return m.store.ChannelMembers(ctx, channel, fn)
		}); err != nil {
			m.log.WarnContext(ctx, "announce member_joined", "connectionId", id, "channel", channel, "error", err)
		}
	}
	if ok, err := m.store.IsMember(ctx, id, channel); err == nil && !ok {
		m.leavePresence(context.WithoutCancel(ctx), id, channel)
		return fmt.Errorf("connection %s left %s while joining: %w", id, channel, store.ErrNotFound)
	}
	return nil
}

// leavePresence removes the connection from a presence channel and, when it
// was its user's last connection there, tells the others member_left.
func (m *Manager) leavePresence(ctx context.Context, id, channel string) {
	if m.cfg.Presence == nil {
		return
	}
	pm, last, err := m.cfg.Presence.LeavePresence(ctx, channel, id)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		m.log.ErrorContext(ctx, "leave presence", "connectionId", id, "channel", channel, "error", err)
		return
	}
	if !last {
		return
	}
	if _, err := m.sendPages(ctx, protocol.MemberEvent(protocol.MemberLeft, channel, pm.UserID), []string{id}, func(fn store.PageFunc) error {
		return m.store.ChannelMembers(ctx, channel, fn)
	}); err != nil {
		m.log.WarnContext(ctx, "announce member_left", "connectionId", id, "channel", channel, "error", err)
	}
}
