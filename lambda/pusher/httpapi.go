package pusher

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// HTTP API limits (Pusher's).
const (
	MaxEventChannels = 100
	MaxBatchEvents   = 10
	MaxEventName     = 200
)

// APIResponse is the HTTP API's answer (payload format 2.0).
type APIResponse = events.APIGatewayV2HTTPResponse

func apiJSON(status int, v any) APIResponse {
	b, _ := json.Marshal(v)
	return APIResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

func apiError(status int, msg string) APIResponse {
	return apiJSON(status, map[string]any{"error": msg, "code": status})
}

// ServeAPI answers one Pusher HTTP API request: signed as the server SDKs
// sign, under /apps/{app_id}/.
func (h *Handler) ServeAPI(ctx context.Context, req events.APIGatewayV2HTTPRequest) APIResponse {
	method := req.RequestContext.HTTP.Method
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	query, err := parseQuery(req.RawQueryString)
	if err != nil {
		return apiError(http.StatusBadRequest, "Malformed query string")
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return apiError(http.StatusBadRequest, "Body is not valid base64")
		}
	}
	rest, ok := strings.CutPrefix(path, "/apps/")
	if !ok {
		return apiError(http.StatusNotFound, "Not found")
	}
	appID, rest, _ := strings.Cut(rest, "/")
	if appID != h.cfg.App.ID {
		return apiError(http.StatusNotFound, "App "+appID+" not found")
	}
	if err := h.cfg.App.VerifyRequest(method, path, query, body, h.cfg.Now()); err != nil {
		return apiError(http.StatusUnauthorized, strings.TrimPrefix(err.Error(), ErrBadSignature.Error()+": "))
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	// The signature covers the parameters by their lower-cased names (each
	// once, or VerifyRequest refused them): read them by those names too,
	// so a signed FILTER_BY_PREFIX is not accepted and then ignored.
	lower := make(url.Values, len(query))
	for k, vs := range query {
		lower[strings.ToLower(k)] = vs
	}
	resp := h.route(ctx, method, parts, lower, body)
	h.log.InfoContext(ctx, "pusher http api", "method", method, "path", path, "status", resp.StatusCode)
	return resp
}

// parseQuery is url.ParseQuery with '&' alone separating the pairs: a ';'
// is part of a value, as in a channel name (which may hold one) that an SDK
// puts in filter_by_prefix without escaping it. (url.ParseQuery refuses a
// ';' since Go 1.17.)
func parseQuery(raw string) (url.Values, error) {
	q := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

func (h *Handler) route(ctx context.Context, method string, parts []string, query url.Values, body []byte) APIResponse {
	switch {
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "events":
		return h.apiEvents(ctx, body)
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "batch_events":
		return h.apiBatch(ctx, body)
	case method == http.MethodGet && len(parts) == 1 && parts[0] == "channels":
		return h.apiChannels(ctx, query)
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "channels":
		return h.apiChannel(ctx, parts[1], query)
	case method == http.MethodGet && len(parts) == 3 && parts[0] == "channels" && parts[2] == "users":
		return h.apiUsers(ctx, parts[1])
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "users" && parts[2] == "terminate_connections":
		return h.apiTerminate(ctx, parts[1])
	}
	return apiError(http.StatusNotFound, "Not found")
}

// apiEvent is one event of /events or /batch_events.
type apiEvent struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channel  string          `json:"channel"`
	Channels []string        `json:"channels"`
	SocketID string          `json:"socket_id"`
	Info     string          `json:"info"`
}

// dataString is the event's data as the string subscribers receive.
func (e apiEvent) dataString() string { return dataText(e.Data) }

// dataText is event data as the string subscribers receive: the SDKs (and
// pusher-js for client events) send a string or a JSON value; a string is
// kept, any other value is sent as its encoding.
func dataText(d json.RawMessage) string {
	var s string
	if json.Unmarshal(d, &s) == nil {
		return s
	}
	return string(d)
}

// validate checks e as Pusher does and returns the status and message of
// the answer when it is refused: 413 for data over the size limit (Pusher's
// "Request Entity Too Large"), 400 for the rest.
func (h *Handler) validate(e *apiEvent) (int, string) {
	if e.Channel != "" {
		e.Channels = append(e.Channels, e.Channel)
	}
	// A channel named twice is one channel: one delivery, one offset.
	seen := make(map[string]bool, len(e.Channels))
	e.Channels = slices.DeleteFunc(e.Channels, func(ch string) bool {
		dup := seen[ch]
		seen[ch] = true
		return dup
	})
	bad := func(msg string) (int, string) { return http.StatusBadRequest, msg }
	switch {
	case e.Name == "" || utf8.RuneCountInString(e.Name) > MaxEventName:
		return bad(fmt.Sprintf("Event name must be 1 to %d characters", MaxEventName))
	case len(e.Channels) == 0:
		return bad("Give channel or channels")
	case len(e.Channels) > MaxEventChannels:
		return bad(fmt.Sprintf("At most %d channels per event", MaxEventChannels))
	case len(e.Data) == 0 || string(e.Data) == "null":
		return bad("Missing data")
	case len(e.dataString()) > h.cfg.MaxEventBytes:
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("Event data exceeds %d bytes", h.cfg.MaxEventBytes)
	case e.SocketID != "" && !ValidSocketID(e.SocketID):
		return bad("Invalid socket_id")
	}
	for _, ch := range e.Channels {
		if !ValidChannel(ch) {
			return bad("Invalid channel name " + ch)
		}
	}
	return 0, ""
}

func (h *Handler) apiEvents(ctx context.Context, body []byte) APIResponse {
	var e apiEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return apiError(http.StatusBadRequest, "Body must be a JSON event")
	}
	if status, msg := h.validate(&e); msg != "" {
		return apiError(status, msg)
	}
	info, err := h.trigger(ctx, e, e.dataString())
	if err != nil {
		h.log.ErrorContext(ctx, "trigger", "event", e.Name, "error", err)
		return apiError(http.StatusInternalServerError, "Internal error")
	}
	if e.Info == "" {
		return apiJSON(http.StatusOK, map[string]any{})
	}
	return apiJSON(http.StatusOK, map[string]any{"channels": info})
}

func (h *Handler) apiBatch(ctx context.Context, body []byte) APIResponse {
	var b struct {
		Batch []apiEvent `json:"batch"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Batch) == 0 {
		return apiError(http.StatusBadRequest, fmt.Sprintf("Body must be {\"batch\": [...]} with 1 to %d events", MaxBatchEvents))
	}
	if len(b.Batch) > MaxBatchEvents {
		return apiError(http.StatusBadRequest, fmt.Sprintf("At most %d events per batch", MaxBatchEvents))
	}
	for i := range b.Batch {
		if status, msg := h.validate(&b.Batch[i]); msg != "" {
			return apiError(status, fmt.Sprintf("batch[%d]: %s", i, msg))
		}
		if len(b.Batch[i].Channels) != 1 {
			return apiError(http.StatusBadRequest, fmt.Sprintf("batch[%d]: one channel per batched event", i))
		}
	}
	withInfo := false
	infos := make([]map[string]any, len(b.Batch))
	for i, e := range b.Batch {
		info, err := h.trigger(ctx, e, e.dataString())
		if err != nil {
			h.log.ErrorContext(ctx, "trigger batch", "event", e.Name, "error", err)
			return apiError(http.StatusInternalServerError, "Internal error")
		}
		infos[i] = map[string]any{}
		if e.Info != "" {
			withInfo = true
			infos[i] = info[e.Channels[0]]
		}
	}
	if !withInfo {
		return apiJSON(http.StatusOK, map[string]any{})
	}
	return apiJSON(http.StatusOK, map[string]any{"batch": infos})
}

// ErrInvalidEvent is an event Trigger refuses before sending anything, for
// the reasons the HTTP API answers 400 or 413 (event name, channel names and
// count, data size, socket id).
var ErrInvalidEvent = errors.New("pusher: invalid event")

// ErrNotPresence is the error of Members for a name that is not a valid
// presence channel, and ErrInvalidUserID that of TerminateUser for a user id
// no connection can sign in as (the HTTP API answers both with 400).
var (
	ErrNotPresence   = errors.New("pusher: not a presence channel")
	ErrInvalidUserID = errors.New("pusher: invalid user id")
)

// Trigger sends an event to channels (as the HTTP API's events endpoint
// does, with its checks: nothing is sent or stored when one fails, and the
// error wraps ErrInvalidEvent), with data as the string subscribers receive,
// except to the connection of excludeSocketID when it is not empty
// (Laravel's toOthers()). Sends to #server-to-user-{id} reach every
// connection signed in as the user.
func (h *Handler) Trigger(ctx context.Context, channels []string, event, data, excludeSocketID string) error {
	raw, _ := json.Marshal(data)
	e := apiEvent{Name: event, Channels: slices.Clone(channels), SocketID: excludeSocketID, Data: raw}
	if _, msg := h.validate(&e); msg != "" {
		return fmt.Errorf("trigger %s: %w: %s", event, ErrInvalidEvent, msg)
	}
	_, err := h.trigger(ctx, e, data)
	return err
}

// SendToUser sends an event to every connection signed in as the user.
func (h *Handler) SendToUser(ctx context.Context, userID, event, data string) error {
	return h.Trigger(ctx, []string{PrefixServerToUser + userID}, event, data, "")
}

// trigger sends one event to its channels, except to socket_id's connection.
func (h *Handler) trigger(ctx context.Context, e apiEvent, data string) (map[string]map[string]any, error) {
	var exclude []string
	if e.SocketID != "" {
		if id, err := h.ConnectionOf(ctx, e.SocketID); err == nil {
			exclude = append(exclude, id)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	info := map[string]map[string]any{}
	for _, ch := range e.Channels {
		if !ValidChannel(ch) {
			return nil, fmt.Errorf("trigger %s on %q: invalid channel name", e.Name, ch)
		}
		frame, err := h.number(ctx, ch, ChannelEvent(ch, e.Name, data))
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", e.Name, err)
		}
		h.remember(ctx, ch, frame)
		rep, err := h.m.SendToStoredChannel(ctx, StoreChannel(ch), frame, exclude...)
		if err != nil {
			return nil, fmt.Errorf("trigger %s on %s: %w", e.Name, ch, err)
		}
		h.log.InfoContext(ctx, "triggered", "event", e.Name, "channel", ch, "delivered", rep.Delivered, "gone", rep.Gone)
		if e.Info != "" {
			ci, err := h.channelInfo(ctx, ch, e.Info)
			if err != nil {
				return nil, err
			}
			info[ch] = ci
		}
	}
	return info, nil
}

func wants(info, attr string) bool {
	for _, a := range strings.Split(info, ",") {
		if strings.TrimSpace(a) == attr {
			return true
		}
	}
	return false
}

func (h *Handler) subscriptionCount(ctx context.Context, ch string) (int, error) {
	n := 0
	err := h.m.Store().ChannelMembers(ctx, StoreChannel(ch), func(ids []string) error {
		n += len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("subscription count of %s: %w", ch, err)
	}
	return n, nil
}

// channelInfo returns the attributes info asks for (subscription_count,
// user_count on presence channels).
func (h *Handler) channelInfo(ctx context.Context, ch, info string) (map[string]any, error) {
	out := map[string]any{}
	if wants(info, "subscription_count") {
		n, err := h.subscriptionCount(ctx, ch)
		if err != nil {
			return nil, err
		}
		out["subscription_count"] = n
	}
	if wants(info, "user_count") && IsPresence(ch) {
		n, err := h.cfg.Presence.PresenceUserCount(ctx, StoreChannel(ch))
		if err != nil {
			return nil, err
		}
		out["user_count"] = n
	}
	return out, nil
}

func (h *Handler) apiChannels(ctx context.Context, query url.Values) APIResponse {
	prefix := query.Get("filter_by_prefix")
	info := query.Get("info")
	if wants(info, "user_count") && !strings.HasPrefix(prefix, PrefixPresence) {
		return apiError(http.StatusBadRequest, "info=user_count needs filter_by_prefix=presence-")
	}
	all, err := h.m.Store().Channels(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "list channels", "error", err)
		return apiError(http.StatusInternalServerError, "Internal error")
	}
	out := map[string]any{}
	for _, sc := range all {
		ch, ok := strings.CutPrefix(sc, storePrefix)
		if !ok || strings.HasPrefix(ch, PrefixServerToUser) || !strings.HasPrefix(ch, prefix) {
			continue
		}
		ci, err := h.channelInfo(ctx, ch, info)
		if err != nil {
			h.log.ErrorContext(ctx, "channel info", "channel", ch, "error", err)
			return apiError(http.StatusInternalServerError, "Internal error")
		}
		out[ch] = ci
	}
	return apiJSON(http.StatusOK, map[string]any{"channels": out})
}

func (h *Handler) apiChannel(ctx context.Context, ch string, query url.Values) APIResponse {
	if !ValidChannel(ch) {
		return apiError(http.StatusBadRequest, "Invalid channel name")
	}
	info := query.Get("info")
	if wants(info, "user_count") && !IsPresence(ch) {
		return apiError(http.StatusBadRequest, "user_count is only available for presence channels")
	}
	n, err := h.subscriptionCount(ctx, ch)
	if err != nil {
		h.log.ErrorContext(ctx, "channel info", "channel", ch, "error", err)
		return apiError(http.StatusInternalServerError, "Internal error")
	}
	out, err := h.channelInfo(ctx, ch, info)
	if err != nil {
		h.log.ErrorContext(ctx, "channel info", "channel", ch, "error", err)
		return apiError(http.StatusInternalServerError, "Internal error")
	}
	out["occupied"] = n > 0
	return apiJSON(http.StatusOK, out)
}

func (h *Handler) apiUsers(ctx context.Context, ch string) APIResponse {
	if !IsPresence(ch) || !ValidChannel(ch) {
		return apiError(http.StatusBadRequest, "Users are only available for presence channels")
	}
	users, err := h.Members(ctx, ch)
	if err != nil {
		h.log.ErrorContext(ctx, "presence users", "channel", ch, "error", err)
		return apiError(http.StatusInternalServerError, "Internal error")
	}
	list := make([]map[string]string, len(users))
	for i, u := range users {
		list[i] = map[string]string{"id": u.UserID}
	}
	sort.Slice(list, func(i, j int) bool { return list[i]["id"] < list[j]["id"] })
	return apiJSON(http.StatusOK, map[string]any{"users": list})
}

// Members returns the users of a presence channel with their user_info; a
// name that is not a valid presence channel is an error wrapping
// ErrNotPresence.
func (h *Handler) Members(ctx context.Context, ch string) ([]Member, error) {
	if !IsPresence(ch) || !ValidChannel(ch) {
		return nil, fmt.Errorf("members of %q: %w", ch, ErrNotPresence)
	}
	users, err := h.cfg.Presence.PresenceUsers(ctx, StoreChannel(ch))
	if err != nil {
		return nil, err
	}
	out := make([]Member, len(users))
	for i, u := range users {
		out[i] = Member{UserID: u.UserID, UserInfo: u.UserInfo}
	}
	return out, nil
}

func (h *Handler) apiTerminate(ctx context.Context, userID string) APIResponse {
	if userID == "" || !ValidChannel(PrefixServerToUser+userID) {
		return apiError(http.StatusBadRequest, "Invalid user id")
	}
	if _, err := h.TerminateUser(ctx, userID); err != nil {
		h.log.ErrorContext(ctx, "terminate user connections", "userId", userID, "error", err)
		return apiError(http.StatusInternalServerError, "Internal error")
	}
	return apiJSON(http.StatusOK, map[string]any{})
}

// TerminateUser closes every connection signed in as the user (or accepted
// for it by the JWT authorizer) and returns how many: each gets
// pusher:error 4009 first, as Pusher does, and leaves its presence channels.
// A user id no connection can sign in as is an error wrapping
// ErrInvalidUserID.
func (h *Handler) TerminateUser(ctx context.Context, userID string) (int, error) {
	if userID == "" || !ValidChannel(PrefixServerToUser+userID) {
		return 0, fmt.Errorf("terminate user %q: %w", userID, ErrInvalidUserID)
	}
	var ids []string
	err := h.m.Store().ChannelMembers(ctx, StoreChannel(PrefixServerToUser+userID), func(page []string) error {
		ids = append(ids, page...)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("terminate user %s: %w", userID, err)
	}
	if len(ids) > 0 {
		if _, err := h.m.SendToConnections(ctx, ids, ErrorFrame(CodeUnauthorized, "You got disconnected by the app.")); err != nil {
			h.log.ErrorContext(ctx, "terminate: notify", "userId", userID, "error", err)
		}
	}
	for _, id := range ids {
		h.cleanup(ctx, id)
		if err := h.m.Disconnect(ctx, id); err != nil {
			h.log.ErrorContext(ctx, "terminate connection", "userId", userID, "connectionId", id, "error", err)
		}
	}
	h.log.InfoContext(ctx, "terminated user connections", "userId", userID, "connections", len(ids))
	return len(ids), nil
}
