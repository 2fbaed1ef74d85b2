package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
)

// Function is a Lambda function as the gateway sees it: a JSON event in, a
// JSON result out. A handler failure is returned as a *FunctionError; any
// other error means the function could not be run at all.
type Function func(ctx context.Context, payload []byte) ([]byte, error)

// FunctionError is a function error in the shape Lambda reports it: the body
// of an Invoke answered with X-Amz-Function-Error.
type FunctionError struct {
	// Message is the error's text (errorMessage).
	Message string `json:"errorMessage"`
	// Type is the error's type name (errorType), e.g. "BadCommandError".
	Type string `json:"errorType"`
	// StackTrace is set by some runtimes, in a runtime-specific shape.
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

// Error implements error: "function error <type>: <message>".
func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Handler adapts an in-process Go handler with aws-lambda-go's signature to a
// Function: the payload is decoded into In, the result encoded as JSON, and an
// error or a panic becomes a *FunctionError whose type is named the way
// aws-lambda-go names it (the Go type name without its package).
func Handler[In, Out any](fn func(context.Context, In) (Out, error)) Function {
	return func(ctx context.Context, payload []byte) (out []byte, err error) {
		var in In
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, &FunctionError{Message: err.Error(), Type: "Runtime.UnmarshalError"}
		}
		defer func() {
			if p := recover(); p != nil {
				trace, _ := json.Marshal(strings.Split(string(debug.Stack()), "\n"))
				out, err = nil, &FunctionError{Message: fmt.Sprint(p), Type: errorType(p), StackTrace: trace}
			}
		}()
		res, herr := fn(ctx, in)
		var ferr *FunctionError
		if errors.As(herr, &ferr) {
			return nil, ferr
		}
		if herr != nil {
			return nil, &FunctionError{Message: herr.Error(), Type: errorType(herr)}
		}
		b, merr := json.Marshal(res)
		if merr != nil {
			return nil, &FunctionError{Message: merr.Error(), Type: "Runtime.MarshalError"}
		}
		return b, nil
	}
}

// errorType mirrors aws-lambda-go's getErrorType.
func errorType(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return "error"
	}
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}
