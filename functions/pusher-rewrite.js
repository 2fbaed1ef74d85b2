// CloudFront Function (cloudfront-js-2.0), viewer request, on the default
// behaviour of the Pusher distribution (pusher.tf).
//
// pusher-js connects to wss://HOST[wsPath]/app/{key}?protocol=7&client=js&version=...
// (wsPath, its option, is empty by default; any path of whole segments is
// accepted before /app/{key} and dropped, except one under /apps, which the
// distribution's /apps/* behaviour sends to the HTTP API first).
// API Gateway WebSocket stages have no paths, so this sends the request to
// the stage root ("/"; the origin path adds the stage name) with the query
// string kept and the key added as the query parameter app_key, which the
// runtime's $connect reads (docs/pusher.md). A client's own app_key is
// replaced by the one in the path.
//
// Every other path is answered 404 here and never reaches API Gateway; the
// HTTP API (/apps/*) has its own behaviour without this function.
var APP_PATH = /^(?:\/[^\/]+)*\/app\/([A-Za-z0-9_\-]+)$/;

function handler(event) {
  var request = event.request;
  var match = APP_PATH.exec(request.uri);
  if (!match) {
    return {
      statusCode: 404,
      statusDescription: 'Not Found',
      headers: { 'content-type': { value: 'text/plain' } },
      body: 'Connect to /app/{key}; the HTTP API is under /apps/{app_id}/.\n',
    };
  }
  var querystring = request.querystring || {};
  querystring.app_key = { value: match[1] };
  request.querystring = querystring;
  request.uri = '/';
  return request;
}
