// Unit tests of the client with a scripted WebSocket (no server): the
// paths wslocal cannot provoke on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../index.js';

// FakeSocket records what the client sends; the test plays the server.
class FakeSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.last = this;
    queueMicrotask(() => { this.readyState = 1; this.onopen?.({}); });
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code = 1000, reason = '') { this.readyState = 3; this.onclose?.({ code, reason }); }
  receive(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test('a gap in live deliveries is filled from the history, in order', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, token: 't', pingInterval: 0 });
  await c.connect();
  const ws = FakeSocket.last;
  assert.equal(new URL(ws.url).searchParams.get('token'), 't');
  const subscribing = c.subscribe('chat-1');
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'subscribe', channel: 'chat-1' });
  ws.receive({ type: 'subscribed', channel: 'chat-1', epoch: 'e', offset: 0 });
  const sub = await subscribing;
  const got = [];
  sub.on('message', (d) => got.push(d));
  ws.receive({ type: 'message', channel: 'chat-1', data: 'one', offset: 1, epoch: 'e' });
  ws.receive({ type: 'message', channel: 'chat-1', data: 'four', offset: 4, epoch: 'e' }); // 2 and 3 never came
  ws.receive({ type: 'message', channel: 'chat-1', data: 'five', offset: 5, epoch: 'e' });
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-1', since: { offset: 1, epoch: 'e' }, limit: 2 });
  assert.deepEqual(got, ['one'], 'later messages wait for the gap');
  ws.receive({ type: 'history', channel: 'chat-1', epoch: 'e', offset: 5, publications: [{ offset: 2, data: 'two' }, { offset: 3, data: 'three' }] });
  await tick();
  assert.deepEqual(got, ['one', 'two', 'three', 'four', 'five']);
  assert.equal(sub.unrecovered, 0);
  c.close();
});

test('a resubscribe merges recovered and live messages by offset, once each', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  let ws = FakeSocket.last;
  const subscribing = c.subscribe('chat-2');
  await tick();
  ws.receive({ type: 'subscribed', channel: 'chat-2', epoch: 'e', offset: 10 });
  const sub = await subscribing;
  const got = [];
  const fromHistory = [];
  const replies = [];
  sub.on('message', (d, f) => { got.push(f.offset); if (f.recovered) fromHistory.push(f.offset); });
  sub.on('subscribed', (r) => replies.push([r.recovered, got.length]));
  ws.receive({ type: 'message', channel: 'chat-2', data: 11, offset: 11, epoch: 'e' });
  ws.close(1001, 'going away');
  await new Promise((r) => { const off = c.on('connected', () => { off(); r(); }); });
  ws = FakeSocket.last;
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'subscribe', channel: 'chat-2', since: { offset: 11, epoch: 'e' } });
  // Live messages after the join arrive before the reply that recovers the gap.
  ws.receive({ type: 'message', channel: 'chat-2', data: 14, offset: 14, epoch: 'e' });
  ws.receive({ type: 'message', channel: 'chat-2', data: 13, offset: 13, epoch: 'e' });
  ws.receive({ type: 'subscribed', channel: 'chat-2', recovered: true, epoch: 'e', offset: 13, publications: [{ offset: 12, data: 12 }, { offset: 13, data: 13 }] });
  ws.receive({ type: 'message', channel: 'chat-2', data: 15, offset: 15, epoch: 'e' });
  await tick();
  assert.deepEqual(got, [11, 12, 13, 14, 15]);
  assert.deepEqual(fromHistory, [12, 13], 'messages from the reply are marked; 14 was held live');
  assert.deepEqual(replies, [[undefined, 1], [true, 5]], 'subscribed is emitted after the recovered and held messages (15 was held too); the first one once the handlers are attached');
  assert.equal(sub.duplicates, 1);
  assert.equal(sub.recoveries, 1);
  c.close();
});

test('recovered:false in a new epoch is reported, and the new epoch is read from its start', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  let ws = FakeSocket.last;
  const subscribing = c.subscribe('chat-3');
  await tick();
  ws.receive({ type: 'subscribed', channel: 'chat-3', epoch: 'old', offset: 3 });
  const sub = await subscribing;
  const lost = [];
  const got = [];
  sub.on('unrecovered', (pos) => lost.push(pos));
  sub.on('message', (d) => got.push(d));
  ws.close(1006, '');
  await new Promise((r) => { const off = c.on('connected', () => { off(); r(); }); });
  ws = FakeSocket.last;
  await tick();
  ws.receive({ type: 'subscribed', channel: 'chat-3', recovered: false, epoch: 'new', offset: 3 });
  ws.receive(msg('chat-3', 4, 'new', 'n4')); // live, while the new epoch is read
  await tick();
  assert.deepEqual(lost, [{ offset: 0, epoch: 'new' }], 'the rest of the old epoch is reported');
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-3', since: { offset: 0, epoch: 'new' }, limit: 3 });
  ws.receive({ type: 'history', channel: 'chat-3', epoch: 'new', offset: 4, publications: [1, 2, 3].map((o) => ({ offset: o, data: 'n' + o })) });
  await tick();
  assert.deepEqual(got, ['n1', 'n2', 'n3', 'n4'], 'the new epoch from its start, then the live message');
  assert.deepEqual(sub.position, { offset: 4, epoch: 'new' });
  assert.equal(sub.unrecovered, 1);
  c.close();
});

// Helpers of the regression tests below.
const until = async (cond, what) => {
  for (let i = 0; i < 500; i++) { if (cond()) return; await new Promise((r) => setTimeout(r, 2)); }
  throw new Error('timed out waiting for ' + what);
};
const reconnected = (c) => new Promise((r) => { const off = c.on('connected', () => { off(); r(); }); });
async function subscribed(c, channel, reply) {
  const subscribing = c.subscribe(channel);
  await tick();
  const ws = FakeSocket.last;
  assert.deepEqual(ws.sent.at(-1), { action: 'subscribe', channel });
  ws.receive({ type: 'subscribed', channel, ...reply });
  const sub = await subscribing;
  const got = [];
  const lost = [];
  sub.on('message', (d, f) => got.push(f.recovered ? `${d}(r)` : d));
  sub.on('unrecovered', (pos) => lost.push(pos));
  await tick(); // the first reply's held messages and 'subscribed' are delivered
  return { ws, sub, got, lost };
}
const msg = (channel, offset, epoch, data = offset) => ({ type: 'message', channel, data, offset, epoch });

test('a gap fill checks offsets, not the count: what the history no longer keeps is reported', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got, lost } = await subscribed(c, 'chat-g', { epoch: 'e', offset: 0 });
  ws.receive(msg('chat-g', 1, 'e'));
  ws.receive(msg('chat-g', 5, 'e')); // 2, 3 and 4 never came live
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-g', since: { offset: 1, epoch: 'e' }, limit: 3 });
  // The history keeps 3 messages: it answers from the oldest it still has (3), three of them.
  ws.receive({ type: 'history', channel: 'chat-g', epoch: 'e', offset: 5, publications: [{ offset: 3, data: 3 }, { offset: 4, data: 4 }, { offset: 5, data: 5 }] });
  await tick();
  assert.deepEqual(lost, [{ offset: 2, epoch: 'e' }], 'message 2 is reported missing');
  assert.deepEqual(got, [1, '3(r)', '4(r)', 5]);
  assert.equal(sub.unrecovered, 1);
  assert.deepEqual(sub.position, { offset: 5, epoch: 'e' });
  c.close();
});

test('a gap fill uses the live messages that arrived during the read, and reads on a reply cut short', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got, lost } = await subscribed(c, 'chat-h', { epoch: 'e', offset: 0 });
  ws.receive(msg('chat-h', 6, 'e')); // concurrent publishes, delivered out of order
  ws.receive(msg('chat-h', 1, 'e'));
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-h', since: { offset: 0, epoch: 'e' }, limit: 5 });
  ws.receive(msg('chat-h', 2, 'e'));
  // 1 and 2 are no longer kept; 3 and 4 fill the 128 KB.
  ws.receive({ type: 'history', channel: 'chat-h', epoch: 'e', offset: 6, publications: [{ offset: 3, data: 3 }, { offset: 4, data: 4 }] });
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-h', since: { offset: 4, epoch: 'e' }, limit: 1 });
  assert.deepEqual(got, [], 'nothing is delivered before the gap is read');
  ws.receive({ type: 'history', channel: 'chat-h', epoch: 'e', offset: 6, publications: [{ offset: 5, data: 5 }, { offset: 6, data: 6 }] });
  await tick();
  assert.deepEqual(got, [1, 2, '3(r)', '4(r)', '5(r)', 6]);
  assert.deepEqual(lost, []);
  assert.equal(sub.unrecovered, 0);
  c.close();
});

test('a new epoch is tracked from its offset 0: its messages out of order are read, none dropped', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got, lost } = await subscribed(c, 'chat-e', { epoch: 'old', offset: 10 });
  ws.receive(msg('chat-e', 2, 'new', 'n2')); // the history expired; two concurrent publishes start a new stream
  ws.receive(msg('chat-e', 1, 'new', 'n1'));
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-e', since: { offset: 0, epoch: 'new' }, limit: 1 });
  ws.receive({ type: 'history', channel: 'chat-e', epoch: 'new', offset: 2, publications: [{ offset: 1, data: 'n1' }] });
  await tick();
  assert.deepEqual(got, ['n1(r)', 'n2']);
  assert.deepEqual(sub.position, { offset: 2, epoch: 'new' });
  assert.deepEqual(lost, []);
  assert.equal(sub.duplicates, 0);
  c.close();
});

test('a late message of an epoch left is delivered once, and the new epoch goes on', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got, lost } = await subscribed(c, 'chat-l', { epoch: 'old', offset: 10 });
  const sent = ws.sent.length;
  ws.receive(msg('chat-l', 1, 'new', 'n1')); // the history expired: a new stream
  ws.receive(msg('chat-l', 11, 'old', 'o11')); // a fan-out of the old stream slower than the ttl
  ws.receive(msg('chat-l', 11, 'old', 'o11')); // the same again
  ws.receive(msg('chat-l', 9, 'old', 'o9')); // before the position the old stream was left at
  ws.receive(msg('chat-l', 2, 'new', 'n2'));
  await tick();
  assert.deepEqual(got, ['n1', 'o11', 'n2'], 'the late message once; the new epoch neither read again nor redelivered');
  assert.equal(ws.sent.length, sent, 'no history read');
  assert.deepEqual(sub.position, { offset: 2, epoch: 'new' });
  assert.deepEqual(lost, []);
  assert.equal(sub.duplicates, 2);
  c.close();
});

test('a late message of the old epoch held during a gap read of the new epoch is delivered after it', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got, lost } = await subscribed(c, 'chat-k', { epoch: 'old', offset: 10 });
  ws.receive(msg('chat-k', 2, 'new', 'n2'));
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-k', since: { offset: 0, epoch: 'new' }, limit: 1 });
  ws.receive(msg('chat-k', 11, 'old', 'o11'));
  ws.receive({ type: 'history', channel: 'chat-k', epoch: 'new', offset: 2, publications: [{ offset: 1, data: 'n1' }] });
  await tick();
  const sent = ws.sent.length;
  ws.receive(msg('chat-k', 3, 'new', 'n3'));
  await tick();
  assert.deepEqual(got, ['n1(r)', 'n2', 'o11', 'n3']);
  assert.equal(ws.sent.length, sent, 'the new epoch is not read again');
  assert.deepEqual(sub.position, { offset: 3, epoch: 'new' });
  assert.deepEqual(lost, []);
  c.close();
});

test('an own publish answered in an epoch left moves nothing', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got } = await subscribed(c, 'chat-q', { epoch: 'old', offset: 0 });
  const p = c.publish('chat-q', 'mine');
  await tick();
  ws.receive(msg('chat-q', 1, 'new', 'n1')); // the stream restarted while the publish was answered late
  ws.receive({ type: 'published', channel: 'chat-q', offset: 1, epoch: 'old' });
  await p;
  ws.receive(msg('chat-q', 2, 'new', 'n2'));
  await tick();
  assert.deepEqual(got, ['n1', 'n2']);
  assert.deepEqual(sub.position, { offset: 2, epoch: 'new' });
  c.close();
});

test('a resubscribe that fails transiently is retried; only a refusal drops the subscription', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, requestTimeout: 50, minReconnectDelay: 1, maxReconnectDelay: 2 });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();
  const { ws: first, sub, got } = await subscribed(c, 'chat-r', { epoch: 'e', offset: 5 });
  const resubscribe = { action: 'subscribe', channel: 'chat-r', since: { offset: 5, epoch: 'e' } };
  first.close(1001, 'going away');
  await reconnected(c);
  let ws = FakeSocket.last;
  await tick();
  assert.deepEqual(ws.sent, [resubscribe]);
  // The reply never comes: the request times out and the connection starts over.
  await until(() => FakeSocket.last !== ws && FakeSocket.last.sent.length === 1, 'a new connection after the timeout');
  ws = FakeSocket.last;
  assert.deepEqual(ws.sent, [resubscribe]);
  ws.receive({ type: 'error', code: 'internal_error', message: 'internal error' });
  await until(() => ws.sent.length === 2, 'a retry after internal_error');
  assert.deepEqual(ws.sent[1], resubscribe);
  // API Gateway's answer to a failed integration has no type.
  ws.receive({ message: 'Internal server error', connectionId: 'c1', requestId: 'r1' });
  await until(() => ws.sent.length === 3, 'a retry after a gateway error');
  ws.receive({ type: 'subscribed', channel: 'chat-r', recovered: true, epoch: 'e', offset: 6, publications: [{ offset: 6, data: 6 }] });
  await tick();
  assert.deepEqual(got, ['6(r)']);
  assert.equal(c._subs.get('chat-r'), sub, 'the subscription is kept');
  assert.deepEqual(errors, []);
  // A refusal is final.
  ws.close(1001, 'going away');
  await reconnected(c);
  ws = FakeSocket.last;
  await tick();
  ws.receive({ type: 'error', code: 'forbidden', message: 'not allowed' });
  await tick();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'forbidden');
  assert.equal(errors[0].channel, 'chat-r');
  assert.equal(c._subs.has('chat-r'), false);
  c.close();
});

test('a subscribe answered "connection is not registered" reconnects and resubscribes', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();
  const first = FakeSocket.last;
  const subscribing = c.subscribe('chat-n');
  await tick();
  first.receive({ type: 'error', code: 'bad_request', message: 'connection is not registered' });
  await until(() => FakeSocket.last !== first && FakeSocket.last.sent.length === 1, 'a new connection that subscribes');
  assert.equal(first.readyState, 3, 'the unregistered connection is closed');
  const ws = FakeSocket.last;
  assert.deepEqual(ws.sent, [{ action: 'subscribe', channel: 'chat-n' }]);
  ws.receive({ type: 'subscribed', channel: 'chat-n', epoch: 'e', offset: 0 });
  const sub = await subscribing;
  assert.deepEqual(sub.position, { offset: 0, epoch: 'e' });
  assert.deepEqual(errors, []);
  c.close();
});

test('a first subscribe answered internal_error is retried and resolves', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  const ws = FakeSocket.last;
  const subscribing = c.subscribe('chat-f');
  await tick();
  ws.receive({ type: 'error', code: 'internal_error', message: 'internal error' });
  await until(() => ws.sent.length === 2, 'a retry');
  ws.receive({ type: 'subscribed', channel: 'chat-f', epoch: 'e', offset: 0 });
  const sub = await subscribing;
  assert.deepEqual(sub.position, { offset: 0, epoch: 'e' });
  c.close();
});

test('own publishes are passed over: neither read from the history nor delivered', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got } = await subscribed(c, 'chat-o', { epoch: 'e', offset: 0 });
  // The published reply first.
  const p1 = c.publish('chat-o', 'mine 1');
  await tick();
  ws.receive({ type: 'published', channel: 'chat-o', offset: 1, epoch: 'e' });
  await p1;
  assert.deepEqual(sub.position, { offset: 1, epoch: 'e' });
  ws.receive(msg('chat-o', 2, 'e'));
  // Someone else's message overtakes the published reply.
  const p3 = c.publish('chat-o', 'mine 3');
  await tick();
  ws.receive(msg('chat-o', 4, 'e'));
  ws.receive({ type: 'published', channel: 'chat-o', offset: 3, epoch: 'e' });
  await p3;
  await tick();
  // Published before a lower offset of someone else arrived.
  const p6 = c.publish('chat-o', 'mine 6');
  await tick();
  ws.receive({ type: 'published', channel: 'chat-o', offset: 6, epoch: 'e' });
  await p6;
  ws.receive(msg('chat-o', 5, 'e'));
  ws.receive(msg('chat-o', 7, 'e'));
  await tick();
  assert.deepEqual(ws.sent.map((f) => f.action), ['subscribe', 'publish', 'publish', 'publish'], 'no history read');
  assert.deepEqual(got, [2, 4, 5, 7]);
  assert.deepEqual(sub.position, { offset: 7, epoch: 'e' });
  assert.equal(sub.duplicates, 0);
  c.close();
});

test('an own publish that starts a new epoch is passed over, and the new stream read from it', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got } = await subscribed(c, 'chat-p', { epoch: 'old', offset: 9 });
  const p = c.publish('chat-p', 'mine');
  await tick();
  ws.receive({ type: 'published', channel: 'chat-p', offset: 1, epoch: 'new' });
  await p;
  ws.receive(msg('chat-p', 3, 'new'));
  ws.receive(msg('chat-p', 2, 'new'));
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-p', since: { offset: 1, epoch: 'new' }, limit: 1 });
  ws.receive({ type: 'history', channel: 'chat-p', epoch: 'new', offset: 3, publications: [{ offset: 2, data: 2 }] });
  await tick();
  assert.deepEqual(got, ['2(r)', 3]);
  assert.deepEqual(sub.position, { offset: 3, epoch: 'new' });
  c.close();
});

test('member events that overtake the subscribed reply are kept', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const ws = FakeSocket.last;
  const subscribing = c.subscribe('presence-m');
  await tick();
  ws.receive({ type: 'member_joined', channel: 'presence-m', userId: 'carol' });
  ws.receive({ type: 'member_left', channel: 'presence-m', userId: 'bob' });
  ws.receive({ type: 'subscribed', channel: 'presence-m', members: [{ userId: 'bob' }, { userId: 'me' }] });
  const sub = await subscribing;
  assert.deepEqual([...sub.members].sort(), ['carol', 'me']);
  c.close();
});

test('close() rejects a subscribe that waits for the connection', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  let settled = 'pending';
  const subscribing = c.subscribe('chat-c').then(() => { settled = 'resolved'; }, (e) => { settled = e.name; });
  assert.equal(c.subscribe('chat-c') instanceof Promise, true);
  c.close();
  await tick();
  assert.equal(settled, 'ConnectionClosedError');
  await subscribing;
  assert.equal(c._subs.has('chat-c'), false);
});

test('requests queued while disconnected are sent after the resubscribes', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  const { ws: first } = await subscribed(c, 'chat-q', { epoch: 'e', offset: 0 });
  first.close(1006, '');
  const publishing = c.publish('chat-q', 'queued');
  await reconnected(c);
  const ws = FakeSocket.last;
  await tick();
  assert.deepEqual(ws.sent, [{ action: 'subscribe', channel: 'chat-q', since: { offset: 0, epoch: 'e' } }]);
  ws.receive({ type: 'subscribed', channel: 'chat-q', recovered: true, epoch: 'e', offset: 0, publications: [] });
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'publish', channel: 'chat-q', data: 'queued' });
  ws.receive({ type: 'published', channel: 'chat-q', offset: 1, epoch: 'e' });
  assert.equal((await publishing).offset, 1);
  c.close();
});

test('a resubscribe whose recovery would pass 128 KB recovers the gap with history, page by page', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  const { ws: first, sub, got, lost } = await subscribed(c, 'chat-big', { epoch: 'e', offset: 2 });
  const replies = [];
  sub.on('subscribed', (r) => replies.push([r.recovered, got.length]));
  first.close(1006, '');
  await reconnected(c);
  const ws = FakeSocket.last;
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'subscribe', channel: 'chat-big', since: { offset: 2, epoch: 'e' } });
  // Offsets 3 to 6 were missed; together they pass 128 KB.
  ws.receive({ type: 'subscribed', channel: 'chat-big', recovered: false, epoch: 'e', offset: 6 });
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-big', since: { offset: 2, epoch: 'e' }, limit: 4 });
  ws.receive(msg('chat-big', 7, 'e')); // a live message meanwhile waits for the gap
  ws.receive({ type: 'history', channel: 'chat-big', epoch: 'e', offset: 7, publications: [{ offset: 3, data: 3 }, { offset: 4, data: 4 }] });
  await tick();
  assert.deepEqual(ws.sent.at(-1), { action: 'history', channel: 'chat-big', since: { offset: 4, epoch: 'e' }, limit: 2 });
  assert.deepEqual(got, []);
  ws.receive({ type: 'history', channel: 'chat-big', epoch: 'e', offset: 7, publications: [{ offset: 5, data: 5 }, { offset: 6, data: 6 }, { offset: 7, data: 7 }] });
  await tick();
  assert.deepEqual(got, ['3(r)', '4(r)', '5(r)', '6(r)', 7]);
  assert.deepEqual(lost, []);
  assert.equal(sub.recoveries, 1);
  assert.equal(sub.unrecovered, 0);
  assert.deepEqual(replies, [[false, 5]], 'subscribed is emitted once the recovered messages (and those held back) are delivered');
  assert.deepEqual(sub.position, { offset: 7, epoch: 'e' });

  // A gap partly past the history: what is kept is delivered, the rest reported.
  ws.close(1006, '');
  await reconnected(c);
  const ws2 = FakeSocket.last;
  await tick();
  ws2.receive({ type: 'subscribed', channel: 'chat-big', recovered: false, epoch: 'e', offset: 12 });
  await tick();
  assert.deepEqual(ws2.sent.at(-1), { action: 'history', channel: 'chat-big', since: { offset: 7, epoch: 'e' }, limit: 5 });
  ws2.receive({ type: 'history', channel: 'chat-big', epoch: 'e', offset: 12, publications: [{ offset: 11, data: 11 }, { offset: 12, data: 12 }] });
  await tick();
  assert.deepEqual(lost, [{ offset: 10, epoch: 'e' }]);
  assert.deepEqual(got.slice(5), ['11(r)', '12(r)']);
  assert.equal(sub.unrecovered, 1);
  assert.equal(sub.recoveries, 1);
  assert.deepEqual(sub.position, { offset: 12, epoch: 'e' });
  c.close();
});

test('messages that overtake the first subscribed reply reach handlers attached after await', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const subscribing = c.subscribe('chat-early');
  await tick();
  const ws = FakeSocket.last;
  // The server joined, read the history (offset 4), then a publish (5)
  // reached the connection before the route response.
  ws.receive(msg('chat-early', 5, 'e', 'five'));
  ws.receive({ type: 'subscribed', channel: 'chat-early', epoch: 'e', offset: 4 });
  const sub = await subscribing;
  assert.deepEqual(sub.position, { offset: 4, epoch: 'e' }, 'the position is set when subscribe() resolves');
  const got = [];
  const replies = [];
  sub.on('message', (d) => got.push(d));
  sub.on('subscribed', (r) => replies.push(r.offset));
  ws.receive(msg('chat-early', 6, 'e', 'six'));
  await tick();
  assert.deepEqual(got, ['five', 'six']);
  assert.deepEqual(replies, [4], 'the first subscribed event too');
  assert.deepEqual(sub.position, { offset: 6, epoch: 'e' });
  c.close();
});

test('an own publish answered before the first subscribe\'s held messages go out moves the position', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const subscribing = c.subscribe('chat-own');
  await tick();
  const ws = FakeSocket.last;
  ws.receive({ type: 'subscribed', channel: 'chat-own', epoch: 'e', offset: 0 });
  const sub = await subscribing;
  // Published at once, answered before the held messages are released.
  const p = c.publish('chat-own', 'mine');
  ws.receive({ type: 'published', channel: 'chat-own', offset: 1, epoch: 'e' });
  await p;
  await tick();
  assert.deepEqual(sub.position, { offset: 1, epoch: 'e' }, 'passed over, so a resubscribe does not recover it');
  c.close();
});

test('a subscribe refused with too_large rejects, and is not retried', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  const subscribing = c.subscribe('presence-huge');
  await tick();
  const ws = FakeSocket.last;
  ws.receive({ type: 'error', code: 'too_large', message: 'presence channel presence-huge has 502 members: the subscribed reply would pass 128 KB' });
  await assert.rejects(subscribing, (e) => e.name === 'ProtocolError' && e.code === 'too_large' && e.channel === 'presence-huge');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ws.sent.filter((f) => f.action === 'subscribe').length, 1, 'no retry');
  c.close();
});

test('a publish whose data JSON cannot encode rejects alone; the next request goes on', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, requestTimeout: 500 });
  await c.connect();
  const ws = FakeSocket.last;
  const cyclic = {};
  cyclic.self = cyclic;
  const pinging = c.ping();
  const bad = c.publish('chat-x', { n: 1n });
  const bad2 = c.publish('chat-x', cyclic);
  // Data without a JSON form is refused before sending.
  const none = Promise.all([undefined, () => 1, Symbol('s')].map((d) => assert.rejects(c.publish('chat-x', d), TypeError)));
  const who = c.whoami();
  await tick();
  assert.deepEqual(ws.sent.map((f) => f.action), ['ping']);
  ws.receive({ type: 'pong' });
  await assert.rejects(bad, TypeError);
  await assert.rejects(bad2, TypeError);
  await none;
  await tick();
  assert.deepEqual(ws.sent.map((f) => f.action), ['ping', 'whoami']);
  ws.receive({ type: 'whoami', connectionId: 'c1', userId: 'u' });
  assert.deepEqual(await who, { connectionId: 'c1', userId: 'u' });
  await pinging;
  c.close();
});

test('nothing is delivered after unsubscribe(), also from a gap read under way', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0 });
  await c.connect();
  const { ws, sub, got } = await subscribed(c, 'chat-u', { epoch: 'e', offset: 0 });
  ws.receive(msg('chat-u', 1, 'e'));
  ws.receive(msg('chat-u', 3, 'e')); // 2 is read from the history
  await tick();
  assert.equal(ws.sent.at(-1).action, 'history');
  const leaving = sub.unsubscribe();
  ws.receive({ type: 'history', channel: 'chat-u', epoch: 'e', offset: 3, publications: [{ offset: 2, data: 2 }] });
  await tick();
  ws.receive({ type: 'unsubscribed', channel: 'chat-u' });
  await leaving;
  assert.deepEqual(got, [1]);
  c.close();
});

test('a ping unanswered on a dead link reconnects at once, not after the socket reports its close', async () => {
  class DeadSocket extends FakeSocket {
    close() { this.readyState = 2; } // the closing handshake never completes
  }
  const c = new Client('ws://example.invalid/dev', { WebSocket: DeadSocket, pingInterval: 20, requestTimeout: 50, minReconnectDelay: 1, maxReconnectDelay: 2 });
  const down = [];
  c.on('disconnected', (e) => down.push(e.code));
  await c.connect();
  const first = FakeSocket.last;
  await until(() => FakeSocket.last !== first && c.connected, 'a new connection');
  assert.deepEqual(down.slice(0, 1), [4000]);
  c.close();
});

test('a resubscribe reports the joins and leaves missed while disconnected', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  const subscribing = c.subscribe('presence-r');
  await tick();
  FakeSocket.last.receive({ type: 'subscribed', channel: 'presence-r', members: [{ userId: 'bob' }, { userId: 'me' }] });
  const sub = await subscribing;
  const events = [];
  sub.on('member_joined', (u) => events.push(`+${u}`));
  sub.on('member_left', (u) => events.push(`-${u}`));
  await tick();
  FakeSocket.last.close(1006, '');
  await reconnected(c);
  const ws = FakeSocket.last;
  await tick();
  ws.receive({ type: 'member_joined', channel: 'presence-r', userId: 'dave' }); // overtakes the reply
  ws.receive({ type: 'subscribed', channel: 'presence-r', members: [{ userId: 'carol' }, { userId: 'me' }] });
  await tick();
  assert.deepEqual(events, ['+dave', '-bob', '+carol']);
  assert.deepEqual([...sub.members].sort(), ['carol', 'dave', 'me']);
  c.close();
});

test('connect() twice while the token is fetched opens one socket; close() leaves none open', async () => {
  const made = [];
  class Counting extends FakeSocket { constructor(url) { super(url); made.push(this); } }
  const c = new Client('ws://example.invalid/dev', {
    WebSocket: Counting, pingInterval: 0,
    token: () => new Promise((r) => setTimeout(() => r('tok'), 20)),
  });
  await Promise.all([c.connect(), c.connect()]);
  await new Promise((r) => setTimeout(r, 60)); // a second token fetch would have ended by now
  assert.equal(made.length, 1);
  c.close();
  assert.deepEqual(made.map((w) => w.readyState), [3]);
});

test('an unsubscribe queued across a reconnect does not undo a later subscribe of the channel', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  const { ws, sub } = await subscribed(c, 'chat-us', { epoch: 'e', offset: 0 });
  const pub = c.publish('chat-us', 'x'); // in flight: the unsubscribe queues behind it
  const unsub = sub.unsubscribe();
  await tick();
  ws.close(1006, '');
  pub.catch(() => {});
  const again = c.subscribe('chat-us');
  await reconnected(c);
  await tick();
  const ws2 = FakeSocket.last;
  assert.deepEqual(ws2.sent.map((f) => f.action), ['subscribe']);
  ws2.receive({ type: 'subscribed', channel: 'chat-us', epoch: 'e', offset: 1 });
  await again;
  await unsub;
  await tick();
  assert.deepEqual(ws2.sent.map((f) => f.action), ['subscribe'], 'the stale unsubscribe is never sent');
  c.close();
});

test('a request queued behind slow replies gets its whole requestTimeout once sent: the connection is not restarted', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, requestTimeout: 80 });
  const down = [];
  c.on('disconnected', (e) => down.push(e.code));
  await c.connect();
  const ws = FakeSocket.last;
  const first = c.publish('chat-q', 1);
  const second = c.publish('chat-q', 2);
  await new Promise((r) => setTimeout(r, 60)); // the first reply is slow, inside its timeout
  ws.receive({ type: 'published', channel: 'chat-q', offset: 1, epoch: 'e' });
  assert.equal((await first).offset, 1);
  await new Promise((r) => setTimeout(r, 40)); // the second waited 60 ms unsent, 40 ms since it was sent
  assert.equal(FakeSocket.last, ws, 'the same connection');
  assert.deepEqual(down, []);
  ws.receive({ type: 'published', channel: 'chat-q', offset: 2, epoch: 'e' });
  assert.equal((await second).offset, 2);
  assert.deepEqual(ws.sent.map((f) => f.data), [1, 2]);
  c.close();
});

test('a request that cannot be sent within requestTimeout rejects unsent', async () => {
  class NeverOpens {
    constructor() { this.readyState = 0; this.sent = []; NeverOpens.last = this; }
    send(text) { this.sent.push(text); }
    close() { this.readyState = 3; }
  }
  const c = new Client('ws://example.invalid/dev', { WebSocket: NeverOpens, pingInterval: 0, requestTimeout: 30 });
  c.connect().catch(() => {});
  await tick();
  const ws = NeverOpens.last;
  assert.ok(ws, 'dialled');
  await assert.rejects(c.publish('chat-r', 1), /no reply to publish within 30 ms/);
  assert.deepEqual(ws.sent, []);
  c.close();
});

test('a keep-alive ping goes ahead of queued publishes: a busy connection is not restarted', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 50, requestTimeout: 100 });
  const down = [];
  c.on('disconnected', (e) => down.push(e.reason));
  await c.connect();
  const ws = FakeSocket.last;
  const publishes = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => c.publish('chat-k', n));
  let answered = 0;
  const server = setInterval(() => { // one reply every 40 ms, in order: the queue outlasts requestTimeout
    const f = ws.sent[answered];
    if (!f) return;
    answered++;
    ws.receive(f.action === 'ping' ? { type: 'pong' } : { type: 'published', channel: 'chat-k', offset: f.data, epoch: 'e' });
  }, 40);
  let results;
  try {
    results = await Promise.allSettled(publishes);
  } finally {
    clearInterval(server);
  }
  assert.deepEqual(down, [], 'the ping was sent after the reply in flight, not after the whole queue');
  const firstPing = ws.sent.findIndex((f) => f.action === 'ping');
  assert.ok(firstPing > 0 && firstPing <= 2, `ping sent at ${firstPing}`);
  for (const r of results) {
    if (r.status === 'rejected') assert.match(r.reason.message, /no reply to publish within 100 ms/, 'only publishes that waited unsent fail');
  }
  assert.ok(results.some((r) => r.status === 'fulfilled'));
  c.close();
});
