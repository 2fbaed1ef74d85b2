// The client against wslocal (WSLOCAL_BIN; WSLOCAL_ARGS adds flags, e.g.
// -dynamodb-endpoint): history channels, recovery after forced closes,
// presence, whoami, errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, client, publish, kick, waitFor } from './helpers.mjs';
import { ProtocolError } from '../index.js';

let gw;
const clients = [];
// Requests get 30 s: on DynamoDB Local a subscribe can wait out lock retries.
const make = (user, opts) => { const c = client(gw.url, user, { requestTimeout: 30000, ...opts }); clients.push(c); return c; };

before(async () => { gw = await start(['-history', 'chat-*:100:1h', '-history', 'short-*:100:3s']); });
after(async () => {
  for (const c of clients) c.close();
  if (gw) await gw.stop();
});

test('whoami, subscribe, publish and receive with offsets', async () => {
  const a = make('alice');
  const b = make('bob');
  await Promise.all([a.connect(), b.connect()]);
  assert.equal((await a.whoami()).userId, 'alice');
  const sa = await a.subscribe('chat-basic');
  const sb = await b.subscribe('chat-basic');
  assert.equal(sb.position.offset, 0);
  assert.ok(sb.position.epoch);
  const got = [];
  sb.on('message', (data, frame) => got.push([data, frame.offset]));
  const reply = await a.publish('chat-basic', { text: 'hi' });
  assert.equal(reply.offset, 1);
  await publish(gw.invoke, 'chat-basic', 'from the server');
  await waitFor(() => got.length === 2, 'two messages');
  assert.deepEqual(got, [[{ text: 'hi' }, 1], ['from the server', 2]]);
  await waitFor(() => sa.position.offset === 2, 'the server send reaches the publisher too');
});

test('recovers what was published while the connection was closed', async () => {
  const c = make('carol');
  await c.connect();
  const sub = await c.subscribe('chat-recover');
  const got = [];
  sub.on('message', (data) => got.push(data));
  await publish(gw.invoke, 'chat-recover', 1);
  await waitFor(() => got.length === 1, 'first message');
  let n = 1;
  for (let round = 0; round < 3; round++) {
    const { connectionId } = await c.whoami();
    const down = new Promise((r) => { const off = c.on('disconnected', () => { off(); r(); }); });
    await kick(gw.url, connectionId);
    await down;
    // Published while the client is away (or reconnecting).
    for (let i = 0; i < 3; i++) await publish(gw.invoke, 'chat-recover', ++n);
    await waitFor(() => got.length === 1 + 3 * (round + 1), `messages after close ${round + 1}`);
  }
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(sub.recoveries >= 3, `recoveries ${sub.recoveries}`);
  assert.equal(sub.unrecovered, 0);
  assert.ok(c.connections >= 4);
});

test('recovers a gap of more than one 128 KB reply, page by page', async () => {
  // Reconnects wait 0.75 to 1.5 s: the gap is published before the resubscribe.
  const c = make('kate', { minReconnectDelay: 1500, maxReconnectDelay: 1500 });
  await c.connect();
  const sub = await c.subscribe('chat-large');
  const got = [];
  const replies = [];
  sub.on('message', (data, frame) => got.push([data.n, !!frame.recovered]));
  sub.on('subscribed', (reply) => replies.push(reply.recovered));
  const { connectionId } = await c.whoami();
  const down = new Promise((r) => { const off = c.on('disconnected', () => { off(); r(); }); });
  await kick(gw.url, connectionId);
  await down;
  // Four messages of 50 KB: together past what one reply can carry.
  for (let n = 1; n <= 4; n++) await publish(gw.invoke, 'chat-large', { n, pad: 'x'.repeat(50000) });
  await waitFor(() => got.length === 4, 'the four messages');
  assert.deepEqual(got, [[1, true], [2, true], [3, true], [4, true]]);
  assert.deepEqual(replies, [undefined, false], 'the first reply, then the resubscribe the server refused to recover in one reply');
  assert.equal(sub.unrecovered, 0);
  assert.equal(sub.recoveries, 1);
});

test('a publisher gets neither its own messages nor a history read for them', async () => {
  const a = make('henry');
  const b = make('iris');
  await Promise.all([a.connect(), b.connect()]);
  const sa = await a.subscribe('chat-own');
  await b.subscribe('chat-own');
  const got = [];
  sa.on('message', (data, frame) => got.push([data, frame.offset, !!frame.recovered]));
  const sent = [];
  const send = a._ws.send.bind(a._ws);
  a._ws.send = (text) => { sent.push(JSON.parse(text).action); send(text); };
  assert.equal((await a.publish('chat-own', 'from henry')).offset, 1);
  assert.equal((await b.publish('chat-own', 'from iris')).offset, 2);
  await publish(gw.invoke, 'chat-own', 'from the server');
  await waitFor(() => got.length >= 2, 'two messages');
  await a.ping(); // anything still on its way to henry arrives before the pong
  assert.deepEqual(got, [['from iris', 2, false], ['from the server', 3, false]]);
  assert.deepEqual(sent, ['publish', 'ping']);
  assert.equal(sa.position.offset, 3);
  assert.equal(sa.duplicates, 0);
});

test('a new epoch after the history expired: concurrent publishes arrive once each, in order', async () => {
  const c = make('judy');
  await c.connect();
  const sub = await c.subscribe('short-epochs');
  const got = [];
  const lost = [];
  sub.on('message', (data, frame) => got.push(`${frame.epoch}:${frame.offset}`));
  sub.on('unrecovered', (pos) => lost.push(pos));
  for (let round = 1; round <= 3; round++) {
    // Rounds 2 and 3 come after the stream's meta expired (ttl 3s, counted
    // in whole seconds on DynamoDB): each starts a new epoch.
    if (round > 1) await new Promise((r) => setTimeout(r, 4500));
    await Promise.all(Array.from({ length: 20 }, (_, i) => publish(gw.invoke, 'short-epochs', i)));
    await waitFor(() => got.length >= 20 * round, `the messages of round ${round}`);
  }
  // At least one new epoch per round; a store stalled for over 2 s between
  // two appends of a round would also start another. Either way every message
  // arrives once, each epoch's from offset 1 in order, one epoch after another.
  assert.equal(got.length, 60, got.join(' '));
  const epochs = [...new Set(got.map((g) => g.split(':')[0]))];
  assert.ok(epochs.length >= 3, got.join(' '));
  const want = epochs.flatMap((e) => {
    const n = got.filter((g) => g.startsWith(`${e}:`)).length;
    return Array.from({ length: n }, (_, i) => `${e}:${i + 1}`);
  });
  assert.deepEqual(got, want);
  assert.deepEqual(lost, []);
});

test('history pages a stream', async () => {
  const c = make('dave');
  await c.connect();
  for (let i = 1; i <= 5; i++) await publish(gw.invoke, 'chat-page', i);
  const page = await c.history('chat-page', { limit: 2 });
  assert.deepEqual(page.publications.map((p) => p.data), [1, 2]);
  const next = await c.history('chat-page', { since: { offset: 2, epoch: page.epoch }, limit: 50 });
  assert.deepEqual(next.publications.map((p) => p.offset), [3, 4, 5]);
});

test('presence: members and joined/left once per user', async () => {
  const e1 = make('erin');
  const e2 = make('erin');
  const f = make('frank');
  await Promise.all([e1.connect(), e2.connect(), f.connect()]);
  const sf = await f.subscribe('presence-lobby');
  assert.deepEqual([...sf.members], ['frank']);
  const events = [];
  sf.on('member_joined', (u) => events.push(['joined', u]));
  sf.on('member_left', (u) => events.push(['left', u]));
  const s1 = await e1.subscribe('presence-lobby');
  assert.deepEqual([...s1.members].sort(), ['erin', 'frank']);
  await e2.subscribe('presence-lobby');
  await waitFor(() => events.length === 1, 'member_joined');
  await s1.unsubscribe();
  e2.close();
  await waitFor(() => events.length === 2, 'member_left');
  assert.deepEqual(events, [['joined', 'erin'], ['left', 'erin']]);
  assert.deepEqual([...sf.members], ['frank']);
});

test('errors reject the request', async () => {
  const g = make('gina');
  await g.connect();
  await assert.rejects(g.publish('chat-nope', 1), (err) => err instanceof ProtocolError && err.code === 'not_subscribed');
  await assert.rejects(g.subscribe('private-x'), (err) => err instanceof ProtocolError && err.code === 'forbidden');
  assert.equal((await g.ping()).type, 'pong');
});
