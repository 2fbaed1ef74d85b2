// Unit tests of functions/pusher-rewrite.js, the viewer-request CloudFront
// Function of the Pusher distribution. The file's text runs in a fresh `vm`
// context (no require, no imports: as in cloudfront-js-2.0) and `handler` is
// called with events shaped like CloudFront's documented viewer-request
// events (version 1.0, context, viewer, request with querystring/headers/
// cookies objects of {value[, multiValue]}).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const source = readFileSync(new URL('../../functions/pusher-rewrite.js', import.meta.url), 'utf8');

// loadHandler returns the file's handler; its results are copied out of the
// vm context as plain JSON (objects made there have the context's prototypes,
// which strict deep equality would tell apart), which is also what CloudFront
// does with a function's result.
function loadHandler() {
  const context = vm.createContext({});
  vm.runInContext(source, context, { filename: 'pusher-rewrite.js' });
  assert.equal(typeof context.handler, 'function', 'the file defines function handler(event)');
  return (event) => JSON.parse(JSON.stringify(context.handler(event)));
}

// viewerRequest builds an event as CloudFront documents it for a WebSocket
// handshake; querystring maps names to {value} (or {value, multiValue}).
function viewerRequest(uri, querystring = {}) {
  return {
    version: '1.0',
    context: { distributionDomainName: 'd111111abcdef8.cloudfront.net', distributionId: 'EDFDVBD6EXAMPLE', eventType: 'viewer-request', requestId: '4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==' },
    viewer: { ip: '198.51.100.11' },
    request: {
      method: 'GET',
      uri,
      querystring,
      headers: {
        host: { value: 'd111111abcdef8.cloudfront.net' },
        upgrade: { value: 'websocket' },
        connection: { value: 'Upgrade' },
        'sec-websocket-key': { value: 'dGhlIHNhbXBsZSBub25jZQ==' },
        'sec-websocket-version': { value: '13' },
      },
      cookies: {},
    },
  };
}

const pusherJsQuery = () => ({
  protocol: { value: '7' },
  client: { value: 'js' },
  version: { value: '8.6.0' },
  flash: { value: 'false' },
});

test('/app/{key} goes to the stage root with the query kept and app_key added', () => {
  const handler = loadHandler();
  const event = viewerRequest('/app/app-key', pusherJsQuery());
  const out = handler(event);
  assert.equal(out.uri, '/');
  assert.deepEqual(out.querystring, { ...pusherJsQuery(), app_key: { value: 'app-key' } });
  assert.equal(out.method, 'GET');
  assert.deepEqual(out.headers, event.request.headers, 'handshake headers pass untouched');
});

test('a multi-value query parameter survives the rewrite', () => {
  const handler = loadHandler();
  const qs = { ...pusherJsQuery(), tag: { value: 'b', multiValue: [{ value: 'a' }, { value: 'b' }] } };
  const out = handler(viewerRequest('/app/k_1-X', qs));
  assert.deepEqual(out.querystring.tag, { value: 'b', multiValue: [{ value: 'a' }, { value: 'b' }] });
  assert.deepEqual(out.querystring.app_key, { value: 'k_1-X' });
});

test('the key in the path wins over a client-supplied app_key', () => {
  const handler = loadHandler();
  const out = handler(viewerRequest('/app/real-key', { app_key: { value: 'forged' }, protocol: { value: '7' } }));
  assert.deepEqual(out.querystring.app_key, { value: 'real-key' });
});

test('a request without a query string still gets app_key', () => {
  const handler = loadHandler();
  const event = viewerRequest('/app/app-key');
  delete event.request.querystring;
  const out = handler(event);
  assert.deepEqual(out.querystring, { app_key: { value: 'app-key' } });
  assert.equal(out.uri, '/');
});

test('a wsPath before /app/{key} is accepted and dropped', () => {
  const handler = loadHandler();
  for (const uri of ['/ws/app/app-key', '/a/b/app/app-key', '/app/app/app-key']) {
    const out = handler(viewerRequest(uri, pusherJsQuery()));
    assert.equal(out.uri, '/', uri);
    assert.deepEqual(out.querystring, { ...pusherJsQuery(), app_key: { value: 'app-key' } }, uri);
  }
});

test('every other path is answered 404 at the edge', () => {
  const handler = loadHandler();
  for (const uri of ['/', '/app', '/app/', '/app/key/extra', '/app/key/', '/apps/app-id/events', '/prod', '/app/ke%2Fy', '/app/..', '/favicon.ico', '/ws/app/', '/ws//app/key', '/ws/app/key/']) {
    const out = handler(viewerRequest(uri, pusherJsQuery()));
    assert.equal(out.statusCode, 404, uri);
    assert.equal(out.statusDescription, 'Not Found', uri);
    assert.equal(out.uri, undefined, `${uri} is answered, not forwarded`);
  }
});

test('the code stays within cloudfront-js-2.0: no imports, no require, one handler', () => {
  assert.doesNotMatch(source, /\b(import|require)\s*\(|^\s*import\s/m);
  assert.doesNotMatch(source, /\bexport\b/);
  assert.match(source, /^function handler\(event\) \{/m);
  assert.ok(Buffer.byteLength(source) < 10240, 'CloudFront Functions are limited to 10 KB of code');
});
