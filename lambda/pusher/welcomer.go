package pusher

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Invoker is the subset of *lambda.Client the LambdaWelcomer uses.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ Invoker = (*lambda.Client)(nil)

// LambdaWelcomer runs the welcome step as an asynchronous invocation
// (InvocationType Event) of a function, normally the websocket function
// itself: $connect returns at once and the step posts as soon as API
// Gateway lets it. The local gateway serves the same Invoke API.
type LambdaWelcomer struct {
	// Client invokes functions.
	Client Invoker
	// FunctionName is the function to invoke (AWS_LAMBDA_FUNCTION_NAME).
	FunctionName string
}

// Welcome implements Welcomer.
func (l LambdaWelcomer) Welcome(ctx context.Context, w Welcome) error {
	payload, err := json.Marshal(WelcomeEvent{Welcome: &w})
	if err != nil {
		return fmt.Errorf("welcome %s: %w", w.ConnectionID, err)
	}
	_, err = l.Client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.FunctionName),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("welcome %s: invoke %s: %w", w.ConnectionID, l.FunctionName, err)
	}
	return nil
}
