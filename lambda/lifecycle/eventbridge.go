// Package lifecycle publishes the runtime's lifecycle events (connected,
// disconnected, message, channel joined and left) to an EventBridge bus.
package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// PutEventsAPI is the part of the EventBridge client the publisher uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge implements realtime.EventPublisher.
type EventBridge struct {
	client PutEventsAPI
	bus    string
	source string
}

// NewEventBridge returns a publisher to bus with the given event source
// (default "websocket").
func NewEventBridge(client PutEventsAPI, bus, source string) (*EventBridge, error) {
	if client == nil || bus == "" {
		return nil, errors.New("lifecycle: EventBridge client and bus name are required")
	}
	if source == "" {
		source = "websocket"
	}
	return &EventBridge{client: client, bus: bus, source: source}, nil
}

// Publish sends one event whose detail-type is detailType.
func (e *EventBridge) Publish(ctx context.Context, detailType string, detail map[string]any) error {
	body, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("publish %s: encode detail: %w", detailType, err)
	}
	out, err := e.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
		EventBusName: aws.String(e.bus),
		Source:       aws.String(e.source),
		DetailType:   aws.String(detailType),
		Detail:       aws.String(string(body)),
	}}})
	if err != nil {
		return fmt.Errorf("publish %s to %s: %w", detailType, e.bus, err)
	}
	if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
		return fmt.Errorf("publish %s to %s: %s: %s", detailType, e.bus, aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage))
	}
	return nil
}
