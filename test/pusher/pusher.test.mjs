// pusher-js 8.6.0, laravel-echo 2.5.0 and the `pusher` 5.3.4 server SDK,
// unchanged, against wslocal's Pusher mode. The test starts the wslocal
// binary (WSLOCAL_BIN, extra flags in WSLOCAL_ARGS, e.g. DynamoDB Local and
// -lambda-dir for the compiled bootstraps) on a free port and stops it by PID.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWslocal, stopWslocal } from '../browser/wslocal.mjs';
import Pusher from 'pusher-js';
import Echo from 'laravel-echo';
import PusherServer from 'pusher';
import WebSocket from 'ws';

const bin = process.env.WSLOCAL_BIN;
if (!bin) throw new Error('WSLOCAL_BIN must name the wslocal binary');
const extraArgs = (process.env.WSLOCAL_ARGS || '').split(/\s+/).filter(Boolean);
// feed-* channels keep history (docs/pusher.md, "History and recovery").
const HISTORY_ARGS = ['-history', 'feed-*:100:1h'];
const APP = { appId: 'app-id', key: 'app-key', secret: 'app-secret' };

let gw;
let port;
let server;
const clients = new Set();

function startGateway() {
  return startWslocal(bin, [...HISTORY_ARGS, ...extraArgs], (out) => {
    const m = out.match(/Pusher\s+ws:\/\/127\.0\.0\.1:(\d+)\/app\/app-key/);
    return m ? { port: Number(m[1]) } : null;
  }, 120000);
}

const stopGateway = (child) => stopWslocal(child, 30000);

before(async () => {
  ({ child: gw, port } = await startGateway());
  server = new PusherServer({ ...APP, host: '127.0.0.1', port: String(port), useTLS: false });
});

after(async () => {
  for (const c of clients) c.disconnect();
  if (gw) await stopGateway(gw);
});

// waitFor polls cond until it holds (no fixed sleeps; the test runner's timeout bounds it).
async function waitFor(cond, what) {
  for (let i = 0; ; i++) {
    const v = await cond();
    if (v) return v;
    if (i > 3000) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function authorizer(secret = APP.secret, presence) {
  const signer = secret === APP.secret ? server : new PusherServer({ ...APP, secret, host: '127.0.0.1', port: String(port), useTLS: false });
  return {
    customHandler: (params, callback) => {
      const data = params.channelName.startsWith('presence-') ? presence : undefined;
      callback(null, signer.authorizeChannel(params.socketId, params.channelName, data));
    },
  };
}

function client({ presence, user, secret } = {}) {
  const p = new Pusher(APP.key, {
    wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: '', disableStats: true,
    channelAuthorization: authorizer(secret, presence),
    userAuthentication: {
      customHandler: (params, callback) => callback(null, server.authenticateUser(params.socketId, user)),
    },
  });
  clients.add(p);
  return p;
}

function connected(p) {
  return new Promise((resolve, reject) => {
    if (p.connection.state === 'connected') return resolve(p.connection.socket_id);
    p.connection.bind('connected', () => resolve(p.connection.socket_id));
    p.connection.bind('failed', () => reject(new Error('connection failed')));
  });
}

function subscribed(p, name) {
  return new Promise((resolve, reject) => {
    const ch = p.subscribe(name);
    ch.bind('pusher:subscription_succeeded', (data) => resolve({ ch, data }));
    ch.bind('pusher:subscription_error', (err) => reject(Object.assign(new Error('subscription_error'), { err })));
  });
}

function close(...ps) {
  for (const p of ps) {
    p.disconnect();
    clients.delete(p);
  }
}

// A sentinel event sent after the events under test: when it arrives, every
// earlier frame to that connection has arrived too.
async function sentinel(p, channel) {
  let got = false;
  const ch = p.channel(channel);
  const handler = () => { got = true; };
  ch.bind('sentinel', handler);
  await server.trigger(channel, 'sentinel', {});
  await waitFor(() => got, 'sentinel on ' + channel);
  ch.unbind('sentinel', handler);
}

test('connection_established first, socket_id ^\\d+\\.\\d+$, latency from the handshake', async () => {
  const samples = [];
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    const p = client();
    const sid = await connected(p);
    samples.push(performance.now() - start);
    assert.match(sid, /^\d+\.\d+$/);
    close(p);
  }
  samples.sort((a, b) => a - b);
  const pick = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)].toFixed(1);
  console.log(`connection_established latency over ${samples.length} connections: p50 ${pick(0.5)} ms, p99 ${pick(0.99)} ms, max ${pick(1)} ms`);
});

test('pusher-js with wsPath connects: the path before /app/{key} is accepted', async () => {
  const p = new Pusher(APP.key, { wsHost: '127.0.0.1', wsPort: port, wsPath: '/ws/v1', forceTLS: false, enabledTransports: ['ws'], cluster: '', disableStats: true });
  clients.add(p);
  assert.match(await connected(p), /^\d+\.\d+$/);
  const { ch } = await subscribed(p, 'wspath');
  const got = new Promise((resolve) => ch.bind('hello', resolve));
  await server.trigger('wspath', 'hello', { n: 1 });
  assert.deepEqual(await got, { n: 1 });
  close(p);
});

test('private-encrypted: pusher-js opens what the pusher SDK sealed; the stage relays it untouched', async () => {
  const masterKey = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
  const enc = new PusherServer({ ...APP, host: '127.0.0.1', port: String(port), useTLS: false, encryptionMasterKeyBase64: masterKey });
  const p = new Pusher(APP.key, {
    wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: '', disableStats: true,
    channelAuthorization: { customHandler: (params, callback) => callback(null, enc.authorizeChannel(params.socketId, params.channelName)) },
  });
  clients.add(p);
  await connected(p);
  const { ch } = await subscribed(p, 'private-encrypted-vault');
  // A raw subscriber (no shared secret) sees what crosses the stage: the ciphertext.
  const raw = new WebSocket(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7&client=raw&version=1`);
  const frames = [];
  raw.on('message', (m) => frames.push(JSON.parse(String(m))));
  const sid = await waitFor(() => frames.find((f) => f.event === 'pusher:connection_established'), 'raw socket');
  const rawSocket = JSON.parse(sid.data).socket_id;
  raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-vault', auth: enc.authorizeChannel(rawSocket, 'private-encrypted-vault').auth } }));
  await waitFor(() => frames.find((f) => f.event === 'pusher_internal:subscription_succeeded'), 'raw subscription');
  const got = new Promise((resolve) => ch.bind('secret', resolve));
  await enc.trigger('private-encrypted-vault', 'secret', { pin: '1234' });
  assert.deepEqual(await got, { pin: '1234' });
  const sealed = await waitFor(() => frames.find((f) => f.event === 'secret'), 'ciphertext');
  const box = JSON.parse(sealed.data);
  assert.equal(typeof box.nonce, 'string');
  assert.equal(typeof box.ciphertext, 'string');
  assert.ok(!sealed.data.includes('1234'), 'only ciphertext crosses the stage');
  raw.close();
  close(p);
});

test('the server SDK: data over 10 KB is refused with 413, as Pusher does', async () => {
  await assert.rejects(server.trigger('news', 'big', 'x'.repeat(10 * 1024 + 1)), (err) => err.status === 413);
  await assert.rejects(server.triggerBatch([{ channel: 'news', name: 'big', data: 'x'.repeat(10 * 1024 + 1) }]), (err) => err.status === 413);
  await server.trigger('news', 'fits', 'x'.repeat(10 * 1024 - 2)); // a JSON string of exactly 10 KB
});

test('an unknown app key is refused with 4001 and pusher-js gives up', async () => {
  const p = new Pusher('not-the-key', { wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: '', disableStats: true });
  clients.add(p);
  const errors = [];
  p.connection.bind('error', (e) => errors.push(e));
  const code = (e) => (e.data && e.data.code) || (e.error && e.error.data && e.error.data.code);
  await waitFor(() => errors.some((e) => code(e) === 4001), 'pusher:error 4001');
  await waitFor(() => p.connection.state === 'disconnected' || p.connection.state === 'failed', 'the client gives up');
  close(p);
});

test('public channel: the server SDK triggers, pusher-js receives', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribed(p, 'orders');
  const got = new Promise((resolve) => ch.bind('order.created', resolve));
  await server.trigger('orders', 'order.created', { id: 7 });
  assert.deepEqual(await got, { id: 7 });
  close(p);
});

test('private channel authorised by authorizeChannel; a wrong signature gets subscription_error 401', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribed(p, 'private-orders');
  const got = new Promise((resolve) => ch.bind('paid', resolve));
  await server.trigger('private-orders', 'paid', { amount: 3 });
  assert.deepEqual(await got, { amount: 3 });

  const bad = client({ secret: 'not-the-secret' });
  await connected(bad);
  const err = await subscribed(bad, 'private-orders').then(() => null, (e) => e.err);
  assert.ok(err, 'subscription must fail');
  assert.equal(err.type, 'AuthError');
  assert.equal(err.status, 401);
  assert.equal(bad.connection.state, 'connected', 'the connection stays open');
  close(p, bad);
});

test('presence: two connections of one user make one member_added; the last leave one member_removed', async () => {
  const observer = client({ presence: { user_id: 'u2', user_info: { name: 'Bea' } } });
  await connected(observer);
  const { ch: obs } = await subscribed(observer, 'presence-room');
  const added = [];
  const removed = [];
  obs.bind('pusher:member_added', (m) => added.push(m));
  obs.bind('pusher:member_removed', (m) => removed.push(m));

  const a1 = client({ presence: { user_id: 'u1', user_info: { name: 'Ann' } } });
  const a2 = client({ presence: { user_id: 'u1', user_info: { name: 'Ann' } } });
  await Promise.all([connected(a1), connected(a2)]);
  const [{ ch: c1 }, { ch: c2 }] = await Promise.all([subscribed(a1, 'presence-room'), subscribed(a2, 'presence-room')]);
  await sentinel(observer, 'presence-room');
  assert.equal(added.length, 1, 'one member_added for two connections of u1');
  assert.equal(added[0].id, 'u1');
  assert.deepEqual(added[0].info, { name: 'Ann' });
  assert.equal(obs.members.count, 2);
  assert.equal(c2.members.count, 2);
  assert.deepEqual(c1.members.me.info, { name: 'Ann' });

  const users = await (await server.get({ path: '/channels/presence-room/users' })).json();
  assert.deepEqual(users.users.map((u) => u.id).sort(), ['u1', 'u2']);
  const info = await (await server.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } })).json();
  assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
  const list = await (await server.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
  assert.deepEqual(list.channels['presence-room'], { user_count: 2 });

  close(a1);
  await waitFor(async () => (await (await server.get({ path: '/channels/presence-room', params: { info: 'subscription_count' } })).json()).subscription_count === 2, 'a1 gone');
  await sentinel(observer, 'presence-room');
  assert.equal(removed.length, 0, 'u1 still has a connection');
  close(a2);
  await waitFor(() => removed.length === 1, 'member_removed');
  await sentinel(observer, 'presence-room');
  assert.equal(removed.length, 1);
  assert.equal(removed[0].id, 'u1');
  assert.equal(obs.members.count, 1);
  close(observer);
});

function echo(presence) {
  const e = new Echo({
    broadcaster: 'pusher', Pusher, key: APP.key, wsHost: '127.0.0.1', wsPort: port, forceTLS: false,
    enabledTransports: ['ws'], cluster: '', disableStats: true, channelAuthorization: authorizer(APP.secret, presence),
  });
  clients.add(e.connector.pusher);
  return e;
}

test('laravel-echo: whispers reach the others, never the sender; toOthers() excludes the socket', async () => {
  const a = echo({ user_id: 'a', user_info: { name: 'A' } });
  const b = echo({ user_id: 'b', user_info: { name: 'B' } });
  await Promise.all([connected(a.connector.pusher), connected(b.connector.pusher)]);
  const heardA = [];
  const heardB = [];
  const events = [];
  const ready = (e, heard) => new Promise((resolve) => {
    e.join('chat').here(resolve).listenForWhisper('typing', (w) => heard.push(w)).listen('.message', (m) => events.push([e, m]));
  });
  await Promise.all([ready(a, heardA), ready(b, heardB)]);
  a.join('chat').whisper('typing', { who: 'a' });
  await waitFor(() => heardB.length === 1, 'whisper at b');
  await sentinel(a.connector.pusher, 'presence-chat');
  assert.deepEqual(heardB, [{ who: 'a' }]);
  assert.equal(heardA.length, 0, 'a whisper is not echoed');

  // Laravel's toOthers(): the X-Socket-ID becomes socket_id on the trigger.
  await server.trigger('presence-chat', 'message', { text: 'hi' }, { socket_id: a.socketId() });
  await waitFor(() => events.length === 1, 'message at b');
  await sentinel(a.connector.pusher, 'presence-chat');
  assert.equal(events.length, 1);
  assert.equal(events[0][0], b, 'only b got the message');
  a.disconnect();
  b.disconnect();
});

test('client events beyond 10 per second answer pusher:error 4301', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribed(p, 'private-burst');
  const errors = [];
  p.connection.bind('error', (e) => errors.push(e));
  for (let i = 0; i < 40; i++) ch.trigger('client-burst', { i });
  await waitFor(() => errors.some((e) => e.data && e.data.code === 4301), '4301');
  assert.equal(p.connection.state, 'connected');
  close(p);
});

test('signin, send to the user, terminate: the client is closed and reconnects with a new socket', async () => {
  const p = client({ user: { id: 'user-42', name: 'Zed' } });
  const first = await connected(p);
  const received = [];
  p.user.bind('note', (d) => received.push(d));
  p.signin();
  await p.user.signinDonePromise;
  assert.equal(p.user.user_data.id, 'user-42');
  await waitFor(() => p.user.serverToUserChannel && p.user.serverToUserChannel.subscribed, 'server-to-user subscription');
  await server.sendToUser('user-42', 'note', { hello: 1 });
  await waitFor(() => received.length === 1, 'event sent to the user');
  assert.deepEqual(received[0], { hello: 1 });

  const errors = [];
  p.connection.bind('error', (e) => errors.push(e));
  await server.terminateUserConnections('user-42');
  await waitFor(() => errors.some((e) => e.data && e.data.code === 4009), 'pusher:error 4009');
  await waitFor(() => p.connection.state === 'connected' && p.connection.socket_id !== first, 'reconnect with a new socket id');
  close(p);
});

test('presence as the signed-in user: an authorization without channel_data joins with the signin user object', async () => {
  const obs = client({ presence: { user_id: 'observer' } });
  await connected(obs);
  const { ch: obsCh } = await subscribed(obs, 'presence-signin');
  const added = [];
  obsCh.bind('pusher:member_added', (m) => added.push(m));

  const p = client({ user: { id: 'signed-1', user_info: { name: 'Sig' } } }); // no presence data: authorizeChannel signs socket_id:channel
  await connected(p);
  p.signin();
  await p.user.signinDonePromise;
  const { ch } = await subscribed(p, 'presence-signin');
  assert.equal(ch.members.me.id, 'signed-1');
  assert.deepEqual(ch.members.me.info, { name: 'Sig' });
  assert.equal(ch.members.count, 2);
  await waitFor(() => added.length === 1, 'member_added for the signed-in user');
  assert.deepEqual(added[0], { id: 'signed-1', info: { name: 'Sig' } });
  close(p, obs);
});

test('cache channels: the last event on subscribe, or pusher:cache_miss', async () => {
  await server.trigger('cache-news', 'headline', { title: 'cached' });
  const p = client();
  await connected(p);
  const ch = p.subscribe('cache-news');
  const got = await new Promise((resolve) => ch.bind('headline', resolve));
  assert.deepEqual(got, { title: 'cached' });
  const empty = p.subscribe('cache-empty');
  await new Promise((resolve) => empty.bind('pusher:cache_miss', resolve));
  close(p);
});

test('the HTTP API: batch_events, channels, bad signature 401, unknown app 404', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribed(p, 'batch-a');
  const got = [];
  ch.bind('one', (d) => got.push(d));
  ch.bind('two', (d) => got.push(d));
  const res = await server.triggerBatch([
    { channel: 'batch-a', name: 'one', data: { n: 1 } },
    { channel: 'batch-a', name: 'two', data: { n: 2 } },
  ]);
  assert.equal(res.status, 200);
  await waitFor(() => got.length === 2, 'batch');
  const channels = await (await server.get({ path: '/channels' })).json();
  assert.ok('batch-a' in channels.channels);

  const wrong = new PusherServer({ ...APP, secret: 'wrong', host: '127.0.0.1', port: String(port), useTLS: false });
  await assert.rejects(wrong.trigger('batch-a', 'x', {}), (e) => e.status === 401);
  const other = new PusherServer({ ...APP, appId: 'nope', host: '127.0.0.1', port: String(port), useTLS: false });
  await assert.rejects(other.trigger('batch-a', 'x', {}), (e) => e.status === 404);
  close(p);
});

// rawClient speaks the Pusher protocol over a plain WebSocket, as a client
// that reads offset and epoch (which pusher-js drops) would.
async function rawClient() {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7&client=raw`);
  const frames = [];
  ws.on('message', (b) => frames.push(JSON.parse(String(b))));
  await waitFor(() => frames.some((f) => f.event === 'pusher:connection_established'), 'connection_established');
  const subscribe = async (channel, since) => {
    const from = frames.length;
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: since ? { channel, since } : { channel } }));
    const i = await waitFor(() => {
      const j = frames.findIndex((f, k) => k >= from && f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
      return j >= 0 ? j + 1 : 0;
    }, 'subscription_succeeded on ' + channel);
    return { before: frames.slice(from, i - 1), reply: frames[i - 1] };
  };
  const closed = new Promise((resolve) => ws.on('close', resolve));
  return { ws, frames, subscribe, close: () => { ws.close(); return closed; } };
}

test('history channels: pusher-js and Echo receive numbered events unchanged; since recovers the gap before subscription_succeeded', async () => {
  const p = client();
  await connected(p);
  const { ch } = await subscribed(p, 'feed-1');
  const heard = [];
  ch.bind('post', (d) => heard.push(d));
  const e = echo();
  await connected(e.connector.pusher);
  const echoed = [];
  await new Promise((resolve) => e.channel('feed-1').subscribed(resolve).listen('.post', (d) => echoed.push(d)));

  const a = await rawClient();
  const first = await a.subscribe('feed-1');
  assert.equal(typeof first.reply.epoch, 'string');
  const start = first.reply.offset;
  assert.equal(typeof start, 'number', 'subscription_succeeded carries the stream position');
  await server.trigger('feed-1', 'post', { n: 1 });
  await server.trigger('feed-1', 'post', { n: 2 });
  await waitFor(() => heard.length === 2 && echoed.length === 2, 'pusher-js and Echo get both events');
  assert.deepEqual(heard, [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(echoed, [{ n: 1 }, { n: 2 }]);
  const live = () => a.frames.filter((f) => f.event === 'post');
  await waitFor(() => live().length === 2, 'raw client gets both events');
  assert.deepEqual(live().map((f) => [f.offset, f.epoch, JSON.parse(f.data).n]), [[start + 1, first.reply.epoch, 1], [start + 2, first.reply.epoch, 2]]);
  const last = live()[1];
  await a.close();

  // Published while the raw client is away, one of them through batch_events.
  await server.trigger('feed-1', 'post', { n: 3 });
  await server.triggerBatch([{ channel: 'feed-1', name: 'post', data: { n: 4 } }]);
  await waitFor(() => heard.length === 4, 'pusher-js gets the gap live');

  const b = await rawClient();
  const back = await b.subscribe('feed-1', { offset: last.offset, epoch: last.epoch });
  assert.equal(back.reply.recovered, true);
  assert.equal(back.reply.offset, last.offset + 2);
  assert.deepEqual(back.before.map((f) => [f.event, f.offset, JSON.parse(f.data).n]), [['post', last.offset + 1, 3], ['post', last.offset + 2, 4]],
    'the missed events, in order, before subscription_succeeded');

  const c = await rawClient();
  const other = await c.subscribe('feed-1', { offset: 1, epoch: 'not-this-stream' });
  assert.equal(other.reply.recovered, false);
  assert.deepEqual(other.before, [], 'nothing is replayed from another epoch');
  const plain = await c.subscribe('orders-raw', { offset: 1, epoch: last.epoch });
  assert.equal(plain.reply.recovered, false, 'channels without history never recover');
  assert.equal(plain.reply.offset, undefined);
  await Promise.all([b.close(), c.close()]);
  close(p);
  e.disconnect();
});
