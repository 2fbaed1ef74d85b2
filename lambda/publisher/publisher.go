// Package publisher is the server-side API for backends in any language: the
// publisher Lambda is invoked (Lambda Invoke API) with a JSON command and
// answers with per-recipient results. See docs/publisher.md for every command.
package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Command actions.
const (
	ActionSend          = "send"
	ActionSendToUser    = "sendToUser"
	ActionSendToUsers   = "sendToUsers"
	ActionSendToChannel = "sendToChannel"
	ActionBroadcast     = "broadcast"
	ActionDisconnect    = "disconnect"
	ActionJoin          = "join"
	ActionLeave         = "leave"
	ActionConnection    = "connection"
	ActionConnections   = "connections"
	ActionChannel       = "channel"
	ActionChannels      = "channels"
	ActionUser          = "user"
	ActionStats         = "stats"
	ActionCleanup       = "cleanup"
)

// MaxCommand bounds a command's size; Lambda's synchronous payload limit is 6 MB.
const MaxCommand = 6 * 1024 * 1024

// Command is one publisher invocation.
type Command struct {
	// Action selects the operation.
	Action string `json:"action"`
	// ConnectionID names one connection (send, disconnect, join, leave, connection).
	ConnectionID string `json:"connectionId,omitempty"`
	// ConnectionIDs names several connections (send).
	ConnectionIDs []string `json:"connectionIds,omitzero"`
	// UserID names one user (sendToUser, user).
	UserID string `json:"userId,omitempty"`
	// UserIDs names several users (sendToUsers).
	UserIDs []string `json:"userIds,omitempty"`
	// Channel names a channel (sendToChannel, join, leave, channel).
	Channel string `json:"channel,omitempty"`
	// Exclude lists connections sendToChannel and broadcast skip.
	Exclude []string `json:"exclude,omitempty"`
	// Data is the payload, any JSON value, delivered to clients unchanged.
	Data json.RawMessage `json:"data,omitempty"`
}

// wireCommand is a Command as JSON: user ids may also be integers, as the
// original package and the authorizer's context take them (42 is "42").
type wireCommand struct {
	Command
	UserID  userIDValue   `json:"userId,omitempty"`
	UserIDs []userIDValue `json:"userIds,omitempty"`
}

// userIDValue is a user id given as a JSON string or a JSON integer (its
// digits, exactly; a fraction or exponent is refused).
type userIDValue string

// UnmarshalJSON implements json.Unmarshaler.
func (u *userIDValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*u = userIDValue(s)
		return nil
	}
	text := string(b)
	digits := strings.TrimPrefix(text, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return fmt.Errorf("a user id must be a string or an integer, got %.32s", text)
	}
	*u = userIDValue(text)
	return nil
}

// BadCommandError is returned for a command that cannot be executed as
// given. Lambda reports it with errorType "BadCommandError".
type BadCommandError struct {
	// Reason says what is wrong, in words a caller can act on.
	Reason string
}

// Error implements error.
func (e *BadCommandError) Error() string { return "bad command: " + e.Reason }

func bad(format string, args ...any) error {
	return &BadCommandError{Reason: fmt.Sprintf(format, args...)}
}

// MaxUsers bounds the userIds of one sendToUsers command.
const MaxUsers = realtime.MaxUsersPerSend

// Command field names, as they must be spelled (case-sensitive).
const (
	fieldAction        = "action"
	fieldConnectionID  = "connectionId"
	fieldConnectionIDs = "connectionIds"
	fieldUserID        = "userId"
	fieldUserIDs       = "userIds"
	fieldChannel       = "channel"
	fieldExclude       = "exclude"
	fieldData          = "data"
)

// fieldsOf lists the fields each action takes besides action. A known field
// that an action does not take is refused rather than ignored, so that
// {"action":"broadcast","channel":"news"} cannot broadcast to everyone.
var fieldsOf = map[string][]string{
	ActionSend:          {fieldConnectionID, fieldConnectionIDs, fieldData},
	ActionSendToUser:    {fieldUserID, fieldData},
	ActionSendToUsers:   {fieldUserIDs, fieldData},
	ActionSendToChannel: {fieldChannel, fieldData, fieldExclude},
	ActionBroadcast:     {fieldData, fieldExclude},
	ActionDisconnect:    {fieldConnectionID},
	ActionJoin:          {fieldConnectionID, fieldChannel},
	ActionLeave:         {fieldConnectionID, fieldChannel},
	ActionConnection:    {fieldConnectionID},
	ActionConnections:   {},
	ActionChannel:       {fieldChannel},
	ActionChannels:      {},
	ActionUser:          {fieldUserID},
	ActionStats:         {},
	ActionCleanup:       {},
}

var knownFields = []string{fieldAction, fieldConnectionID, fieldConnectionIDs, fieldUserID, fieldUserIDs, fieldChannel, fieldExclude, fieldData}

// Parse decodes and validates a command. Field names are case-sensitive;
// unknown fields, and known fields the action does not take, are refused, so
// a misspelled or misplaced field is an error instead of a silent no-op.
// Connection ids must pass store.ValidConnectionID (1 to 128 printable ASCII
// characters) and user ids store.ValidUserID (at most 255 bytes of UTF-8),
// so a malformed one never reaches the store.
func Parse(payload []byte) (Command, error) {
	var c Command
	if len(payload) > MaxCommand {
		return c, bad("command of %d bytes exceeds %d", len(payload), MaxCommand)
	}
	if !utf8.Valid(payload) {
		// JSON is UTF-8 (RFC 8259). Go's decoder would turn invalid bytes in
		// an id into U+FFFD (another id), and data is passed on as it is:
		// browsers close a connection with 1007 on a text message that is
		// not UTF-8.
		return c, bad("command is not valid UTF-8")
	}
	fields, err := objectFields(payload)
	if err != nil {
		return c, err
	}
	for name := range fields {
		if !slices.Contains(knownFields, name) {
			return c, bad("unknown field %.64q (field names are case-sensitive; see docs/publisher.md)", name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var w wireCommand
	if err := dec.Decode(&w); err != nil {
		return c, bad("command must be a JSON object with known fields: %v", err)
	}
	c = w.Command
	c.UserID = string(w.UserID)
	if w.UserIDs != nil {
		c.UserIDs = make([]string, len(w.UserIDs))
		for i, id := range w.UserIDs {
			c.UserIDs[i] = string(id)
		}
	}
	if _, ok := fields[fieldAction]; !ok || c.Action == "" {
		return c, bad("missing action")
	}
	allowed, ok := fieldsOf[c.Action]
	if !ok {
		return c, bad("unknown action %.64q; see docs/publisher.md", c.Action)
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		switch {
		case name == fieldAction || slices.Contains(allowed, name):
		case name == fieldExclude:
			return c, bad("exclude applies to sendToChannel and broadcast only")
		default:
			return c, bad("%s does not take field %s", c.Action, name)
		}
	}
	if _, ok := fields[fieldConnectionID]; ok && c.ConnectionID == "" {
		return c, bad("%s: empty connectionId", c.Action)
	}
	return c, c.validate()
}

// check is Parse's checks on a Command built in Go: a known action, only
// the fields it takes set, and validate.
func (c *Command) check() error {
	allowed, ok := fieldsOf[c.Action]
	if !ok {
		return bad("unknown action %.64q; see docs/publisher.md", c.Action)
	}
	set := map[string]bool{
		fieldConnectionID: c.ConnectionID != "", fieldConnectionIDs: c.ConnectionIDs != nil,
		fieldUserID: c.UserID != "", fieldUserIDs: c.UserIDs != nil, fieldChannel: c.Channel != "",
		fieldExclude: c.Exclude != nil, fieldData: len(c.Data) > 0,
	}
	for _, name := range knownFields {
		switch {
		case !set[name] || slices.Contains(allowed, name):
		case name == fieldExclude:
			return bad("exclude applies to sendToChannel and broadcast only")
		default:
			return bad("%s does not take field %s", c.Action, name)
		}
	}
	return c.validate()
}

// validate checks the fields of a decoded command whose field names are valid for its action.
func (c *Command) validate() error {
	needData := func() error {
		if len(bytes.TrimSpace(c.Data)) == 0 || bytes.Equal(bytes.TrimSpace(c.Data), []byte("null")) {
			return bad("%s needs data", c.Action)
		}
		if len(c.Data) > sender.MaxPayload {
			return bad("data of %d bytes exceeds API Gateway's %d-byte message limit", len(c.Data), sender.MaxPayload)
		}
		return nil
	}
	needChannel := func() error {
		if !protocol.ValidChannel(c.Channel) {
			return bad("%s needs a channel of 1 to 164 characters of [A-Za-z0-9_-=@,.;:]", c.Action)
		}
		return nil
	}
	validIDs := func(field string, ids []string) error {
		for _, id := range ids {
			if !store.ValidConnectionID(id) {
				return bad("%s: %s holds an invalid connection id %.40q: want 1 to %d printable ASCII characters", c.Action, field, id, store.MaxConnectionIDLength)
			}
		}
		return nil
	}
	validUsers := func(field string, ids []string) error {
		for _, id := range ids {
			if !store.ValidUserID(id) {
				return bad("%s: %s holds an invalid user id of %d bytes: want at most %d bytes of UTF-8", c.Action, field, len(id), store.MaxUserIDLength)
			}
		}
		return nil
	}
	needConn := func() error {
		if c.ConnectionID == "" {
			return bad("%s needs connectionId", c.Action)
		}
		return validIDs(fieldConnectionID, []string{c.ConnectionID})
	}
	if err := validIDs(fieldExclude, c.Exclude); err != nil {
		return err
	}
	switch c.Action {
	case ActionSend:
		if slices.Contains(c.ConnectionIDs, "") {
			return bad("send: empty connection id")
		}
		if err := validIDs(fieldConnectionIDs, c.ConnectionIDs); err != nil {
			return err
		}
		if c.ConnectionID != "" {
			if err := needConn(); err != nil {
				return err
			}
			c.ConnectionIDs = append([]string{c.ConnectionID}, c.ConnectionIDs...)
			c.ConnectionID = ""
		}
		if len(c.ConnectionIDs) == 0 {
			return bad("send needs connectionId or connectionIds")
		}
		// Its answer lists every recipient: past this many, it could outgrow
		// Lambda's 6 MB response after every post was made.
		if n := len(distinct(c.ConnectionIDs)); n > MaxConnectionIDs {
			return bad("send takes at most %d distinct connection ids, got %d", MaxConnectionIDs, n)
		}
		return needData()
	case ActionSendToUser:
		if c.UserID == "" {
			return bad("sendToUser needs userId")
		}
		if err := validUsers(fieldUserID, []string{c.UserID}); err != nil {
			return err
		}
		return needData()
	case ActionSendToUsers:
		if len(c.UserIDs) == 0 || slices.Contains(c.UserIDs, "") {
			return bad("sendToUsers needs userIds, none empty")
		}
		// A repeated id is one user, as in the answer and Manager.SendToUsers.
		if n := len(distinct(c.UserIDs)); n > MaxUsers {
			return bad("sendToUsers takes at most %d distinct userIds, got %d", MaxUsers, n)
		}
		if err := validUsers(fieldUserIDs, c.UserIDs); err != nil {
			return err
		}
		return needData()
	case ActionSendToChannel:
		if err := needChannel(); err != nil {
			return err
		}
		return needData()
	case ActionBroadcast:
		return needData()
	case ActionDisconnect, ActionConnection:
		return needConn()
	case ActionJoin, ActionLeave:
		if err := needConn(); err != nil {
			return err
		}
		return needChannel()
	case ActionChannel:
		return needChannel()
	case ActionUser:
		if c.UserID == "" {
			return bad("user needs userId")
		}
		return validUsers(fieldUserID, []string{c.UserID})
	}
	return nil
}

// RecipientResult is one recipient's outcome in a response.
type RecipientResult struct {
	// ConnectionID is the recipient.
	ConnectionID string `json:"connectionId"`
	// Status is delivered, gone, too_large, forbidden or failed.
	Status sender.Status `json:"status"`
	// Error names the failure (GoneException, LimitExceededException, ...) when not delivered.
	Error string `json:"error,omitempty"`
}

// Response is the publisher's answer. Only the fields of the command's kind are set.
type Response struct {
	// OK is true whenever the command ran; per-recipient failures are in Results.
	OK bool `json:"ok"`
	// Action echoes the command's action.
	Action string `json:"action"`
	// Delivered counts recipients that received the message.
	Delivered *int `json:"delivered,omitempty"`
	// Gone counts recipients that were closed (and have been removed).
	Gone *int `json:"gone,omitempty"`
	// Failed counts recipients that were too large, forbidden or failed after retries.
	Failed *int `json:"failed,omitempty"`
	// Retries counts extra attempts after throttling or server errors.
	Retries *int `json:"retries,omitempty"`
	// Batches counts the batches handed to fan-out workers when the audience
	// was above the distributed fan-out threshold; the workers deliver them,
	// so the counts above cover only what this invocation sent itself.
	Batches *int `json:"batches,omitempty"`
	// Results has one entry per recipient for send and sendToUser (for
	// sendToUser only the recipients not delivered when the user has more
	// than MaxUserResults connections); for sendToChannel and broadcast only
	// recipients that were not delivered, so the response stays small for
	// large audiences.
	// An empty list is sent as [] (omitzero omits only an action's unset
	// fields).
	Results []RecipientResult `json:"results,omitzero"`
	// ResultsTruncated is true when an answer that lists only the
	// recipients not delivered had more than MaxResults of them to list.
	ResultsTruncated bool `json:"resultsTruncated,omitempty"`
	// Users holds sendToUsers' results per user: every recipient, or only
	// the ones not delivered (at most MaxResults in all) when the users have
	// more than MaxUserResults connections together.
	Users map[string][]RecipientResult `json:"users,omitempty"`
	// Connection answers connection when Found.
	Connection *store.Connection `json:"connection,omitempty"`
	// Found answers connection: whether it is live.
	Found *bool `json:"found,omitempty"`
	// ConnectionIDs answers connections, channel and user.
	ConnectionIDs []string `json:"connectionIds,omitzero"`
	// Channels answers channels.
	Channels []string `json:"channels,omitzero"`
	// Changed answers join and leave: whether the membership changed.
	Changed *bool `json:"changed,omitempty"`
	// Stats answers stats.
	Stats *store.Stats `json:"stats,omitempty"`
	// Removed answers cleanup: how many stale connections were removed.
	Removed *int `json:"removed,omitempty"`
}

// Handler executes commands with a Manager.
type Handler struct {
	m *realtime.Manager
}

// New returns a Handler for m, which must not be nil (New panics: a
// programming error, caught at start-up rather than at the first command).
func New(m *realtime.Manager) *Handler {
	if m == nil {
		panic("publisher.New: nil *realtime.Manager")
	}
	return &Handler{m: m}
}

// Handle is the publisher Lambda's handler: raw JSON in, Response out. A bad
// command returns *BadCommandError; an infrastructure failure returns a
// wrapped error.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (*Response, error) {
	c, err := Parse(payload)
	if err != nil {
		return nil, err
	}
	return h.Execute(ctx, c)
}

func ptr[T any](v T) *T { return &v }

// MaxResults bounds the failures listed for sendToChannel and broadcast, so
// a mostly dead audience cannot push the answer past Lambda's 6 MB limit;
// the counts stay exact and ResultsTruncated says when the list is cut.
const MaxResults = 1000

// MaxConnectionIDs bounds the distinct connection ids of one send command,
// whose answer lists every recipient (about 60 bytes each: 0.6 MB at most).
const MaxConnectionIDs = 10000

// MaxUserResults bounds the recipients sendToUser and sendToUsers list one
// by one. Their audience is the users' connections, which the command does
// not bound; above it the answer lists only the recipients not delivered
// (at most MaxResults, with ResultsTruncated when there were more), as for
// sendToChannel, so that it stays far below Lambda's 6 MB.
const MaxUserResults = 10000

// results lists rep's recipients, only the ones not delivered (at most
// MaxResults of them) when onlyFailures is set. truncated says whether
// failures were left out.
func results(rep sender.Report, onlyFailures bool) (out []RecipientResult, truncated bool) {
	out = make([]RecipientResult, 0, min(len(rep.Results), MaxResults))
	for _, r := range rep.Results {
		if onlyFailures && r.Status == sender.StatusDelivered {
			continue
		}
		if onlyFailures && len(out) == MaxResults {
			return out, true
		}
		rr := RecipientResult{ConnectionID: r.ConnectionID, Status: r.Status}
		if r.Err != nil && r.Status != sender.StatusDelivered {
			rr.Error = publicError(r)
		}
		out = append(out, rr)
	}
	return out, false
}

// publicError names the failure without leaking internals.
func publicError(r sender.Result) string {
	switch r.Status {
	case sender.StatusGone:
		return "GoneException"
	case sender.StatusTooLarge:
		return "PayloadTooLargeException"
	case sender.StatusForbidden:
		return "ForbiddenException"
	case sender.StatusFailed:
		if errors.Is(r.Err, sender.ErrThrottled) {
			return "LimitExceededException"
		}
		return "delivery failed"
	}
	return ""
}

func sendResponse(action string, rep sender.Report, onlyFailures bool) *Response {
	var batches *int
	if rep.Batches > 0 {
		batches = ptr(rep.Batches)
	}
	list, truncated := results(rep, onlyFailures)
	return &Response{
		OK: true, Action: action, Batches: batches,
		Delivered: ptr(rep.Delivered), Gone: ptr(rep.Gone),
		Failed: ptr(rep.Failed + rep.TooLarge + rep.Forbidden), Retries: ptr(rep.Retries),
		Results: list, ResultsTruncated: truncated,
	}
}

// Execute runs a command: one from Parse, or one built in Go, which gets
// the same checks (its action, the fields the action takes, ids, sizes) and
// a *BadCommandError when it fails them, before anything is sent.
func (h *Handler) Execute(ctx context.Context, c Command) (*Response, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	data := []byte(c.Data)
	switch c.Action {
	case ActionSend:
		rep, err := h.m.SendToConnections(ctx, c.ConnectionIDs, data)
		if err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		return sendResponse(c.Action, rep, false), nil
	case ActionSendToUser:
		rep, err := h.m.SendToUser(ctx, c.UserID, data)
		if err != nil {
			return nil, fmt.Errorf("sendToUser %s: %w", c.UserID, err)
		}
		return sendResponse(c.Action, rep, rep.Total() > MaxUserResults), nil
	case ActionSendToUsers:
		reps, err := h.m.SendToUsers(ctx, c.UserIDs, data)
		if err != nil {
			return nil, fmt.Errorf("sendToUsers: %w", err)
		}
		var total sender.Report
		for _, rep := range reps {
			total.Merge(rep)
		}
		resp := sendResponse(c.Action, total, false)
		resp.Results, resp.Users = nil, map[string][]RecipientResult{}
		onlyFailures, listed := total.Total() > MaxUserResults, 0
		for _, u := range slices.Sorted(maps.Keys(reps)) {
			list, truncated := results(reps[u], onlyFailures)
			if onlyFailures {
				// One bound for the whole answer, as for sendToChannel.
				if keep := MaxResults - listed; len(list) > keep {
					list, truncated = list[:keep], true
				}
				listed += len(list)
			}
			resp.Users[u] = list
			resp.ResultsTruncated = resp.ResultsTruncated || truncated
		}
		return resp, nil
	case ActionSendToChannel:
		rep, err := h.m.SendToChannel(ctx, c.Channel, data, c.Exclude...)
		if errors.Is(err, sender.ErrTooLarge) {
			// A history channel's envelope made the message too large.
			return nil, bad("data is too large for %s: %v", c.Channel, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sendToChannel %s: %w", c.Channel, err)
		}
		return sendResponse(c.Action, rep, true), nil
	case ActionBroadcast:
		rep, err := h.m.Broadcast(ctx, data, c.Exclude...)
		if err != nil {
			return nil, fmt.Errorf("broadcast: %w", err)
		}
		return sendResponse(c.Action, rep, true), nil
	case ActionDisconnect:
		if err := h.m.Disconnect(ctx, c.ConnectionID); err != nil {
			return nil, fmt.Errorf("disconnect: %w", err)
		}
		return &Response{OK: true, Action: c.Action}, nil
	case ActionJoin, ActionLeave:
		op := h.m.Join
		if c.Action == ActionLeave {
			op = h.m.Leave
		}
		changed, err := op(ctx, c.ConnectionID, c.Channel)
		if errors.Is(err, store.ErrNotFound) {
			return nil, bad("connection %s does not exist", c.ConnectionID)
		}
		if errors.Is(err, store.ErrTooManyChannels) {
			return nil, bad("connection %s already holds %d channels, the most one connection may join", c.ConnectionID, h.m.MaxChannelsPerConnection())
		}
		if errors.Is(err, realtime.ErrPresenceNeedsUser) {
			return nil, bad("connection %s has no user: presence channels need one", c.ConnectionID)
		}
		if errors.Is(err, realtime.ErrNoPresence) {
			return nil, bad("presence channels are not enabled on this server")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Action, err)
		}
		return &Response{OK: true, Action: c.Action, Changed: ptr(changed)}, nil
	case ActionConnection:
		conn, err := h.m.Connection(ctx, c.ConnectionID)
		if errors.Is(err, store.ErrNotFound) {
			return &Response{OK: true, Action: c.Action, Found: ptr(false)}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("connection: %w", err)
		}
		return &Response{OK: true, Action: c.Action, Found: ptr(true), Connection: &conn}, nil
	case ActionConnections:
		ids, err := h.m.AllConnections(ctx)
		if err != nil {
			return nil, fmt.Errorf("connections: %w", err)
		}
		return &Response{OK: true, Action: c.Action, ConnectionIDs: nonNil(ids)}, nil
	case ActionChannel:
		ids, err := h.m.ConnectionsOfChannel(ctx, c.Channel)
		if err != nil {
			return nil, fmt.Errorf("channel: %w", err)
		}
		return &Response{OK: true, Action: c.Action, ConnectionIDs: nonNil(ids)}, nil
	case ActionUser:
		ids, err := h.m.ConnectionsOfUser(ctx, c.UserID)
		if err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		return &Response{OK: true, Action: c.Action, ConnectionIDs: nonNil(ids)}, nil
	case ActionChannels:
		chs, err := h.m.Channels(ctx)
		if err != nil {
			return nil, fmt.Errorf("channels: %w", err)
		}
		return &Response{OK: true, Action: c.Action, Channels: nonNil(chs)}, nil
	case ActionStats:
		st, err := h.m.Stats(ctx)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		return &Response{OK: true, Action: c.Action, Stats: &st}, nil
	case ActionCleanup:
		n, err := h.m.Cleanup(ctx)
		if err != nil {
			return nil, fmt.Errorf("cleanup: %w", err)
		}
		return &Response{OK: true, Action: c.Action, Removed: ptr(n)}, nil
	}
	return nil, bad("unknown action %q", c.Action)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// distinct returns the set of ids.
func distinct(ids []string) map[string]struct{} {
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return set
}

// objectFields reads the one JSON object payload holds into its fields. A
// field given twice is refused: Go's decoder keeps the last, so
// {"exclude":[...],"exclude":[]} would silently widen a send.
func objectFields(payload []byte) (map[string]json.RawMessage, error) {
	notObject := bad("command must be a JSON object")
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, notObject
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		name, _ := t.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, notObject
		}
		if _, dup := fields[name]; dup {
			return nil, bad("field %.64q appears twice", name)
		}
		fields[name] = value
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		// After the object only whitespace: not a second value, nor a
		// stray ']' or '}'.
		return nil, bad("command must be a single JSON object")
	}
	return fields, nil
}
