// Package localgw is a local stand-in for Amazon API Gateway WebSocket APIs
// and the parts of AWS Lambda the project uses, so the same handler code runs
// on a laptop with no AWS account.
//
// A [Gateway] is an http.Handler that serves:
//
//   - the WebSocket endpoint ws://host/{stage}: route selection on
//     $request.body.action, a REQUEST authorizer with identity sources on
//     $connect, $connect, $disconnect and $default events with the fields
//     API Gateway sends, route responses, the 32 KB frame and 128 KB message
//     limits (close 1009), binary frames refused (close 1003), invalid UTF-8
//     refused (close 1007), outgoing messages in one frame up to 32 KB,
//     a bounded buffer per client (a full one answers POSTs 429), clients
//     that do not read closed (1008), the idle timeout and
//     the maximum connection duration;
//   - the management API POST/GET/DELETE /{stage}/@connections/{id}, in AWS's
//     wire format (410 GoneException, 413 PayloadTooLargeException, 403
//     ForbiddenException for another stage or a refused browser origin, ...);
//   - the Lambda Invoke API POST /2015-03-31/functions/{name}/invocations for
//     functions such as the publisher.
//
// Handlers are [Function] values: JSON in, JSON out, like a Lambda function.
// [Handler] adapts an in-process Go handler (realtime.Manager.Handle,
// publisher.Handler.Handle, auth.Authorizer.Handle or a user's own) and
// [Bootstrap] runs a compiled Lambda bootstrap binary behind the project's
// own Lambda Runtime API server, one process per concurrent invocation.
//
// [Start] wires the whole stack (store, realtime.Manager with the caller's
// hooks, JWT authorizer, publisher) on a listener; Go users call it from
// their own tests the way they would use net/http/httptest.
package localgw
