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
  assert.deepEqual(replies, [[true, 5]], 'subscribed is emitted after the recovered and held messages (15 was held too)');
  assert.equal(sub.duplicates, 1);
  assert.equal(sub.recoveries, 1);
  c.close();
});

test('recovered:false is reported and tracking restarts from the new position', async () => {
  const c = new Client('ws://example.invalid/dev', { WebSocket: FakeSocket, pingInterval: 0, minReconnectDelay: 1, maxReconnectDelay: 2 });
  await c.connect();
  let ws = FakeSocket.last;
  const subscribing = c.subscribe('chat-3');
  await tick();
  ws.receive({ type: 'subscribed', channel: 'chat-3', epoch: 'old', offset: 3 });
  const sub = await subscribing;
  const lost = [];
  sub.on('unrecovered', (pos) => lost.push(pos));
  ws.close(1006, '');
  await new Promise((r) => { const off = c.on('connected', () => { off(); r(); }); });
  ws = FakeSocket.last;
  await tick();
  ws.receive({ type: 'subscribed', channel: 'chat-3', recovered: false, epoch: 'new', offset: 7 });
  await tick();
  assert.deepEqual(lost, [{ offset: 7, epoch: 'new' }]);
  assert.deepEqual(sub.position, { offset: 7, epoch: 'new' });
  c.close();
});
