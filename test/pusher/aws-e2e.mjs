// The Pusher case of the real-AWS tier (test/terraform/aws_e2e_test.go,
// build tag aws): pusher-js, laravel-echo's wire protocol and the `pusher`
// server SDK, unchanged, against a deployed Pusher host. Not part of
// `make test-pusher` (that runs pusher.test.mjs against wslocal); the Go test
// runs it with `node --test aws-e2e.mjs` and these variables:
//
//   PUSHER_HOST, PUSHER_PORT, PUSHER_SCHEME (https on AWS), PUSHER_APP_ID,
//   PUSHER_APP_KEY, PUSHER_APP_SECRET
//
// It can also run against wslocal (PUSHER_HOST=127.0.0.1 PUSHER_PORT=8080
// PUSHER_SCHEME=http and soketi's app-id/app-key/app-secret).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(name + ' is required');
  return v;
};
const host = env('PUSHER_HOST');
const port = Number(env('PUSHER_PORT'));
const tls = env('PUSHER_SCHEME') === 'https';
const APP = { appId: env('PUSHER_APP_ID'), key: env('PUSHER_APP_KEY'), secret: env('PUSHER_APP_SECRET') };
const server = new PusherServer({ ...APP, host, port: String(port), useTLS: tls });
const clients = [];

after(() => clients.forEach((c) => c.disconnect()));

// waitFor polls cond until it holds; the deadline only bounds a broken deployment.
async function waitFor(cond, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function connect(userId) {
  const c = new Pusher(APP.key, {
    cluster: '', wsHost: host, wsPort: port, wssPort: port, forceTLS: tls,
    enabledTransports: ['ws', 'wss'], disableStats: true,
    channelAuthorization: {
      customHandler: (params, callback) => {
        const presence = params.channelName.startsWith('presence-') ? { user_id: userId, user_info: { name: userId } } : undefined;
        callback(null, server.authorizeChannel(params.socketId, params.channelName, presence));
      },
    },
  });
  clients.push(c);
  return c;
}

function subscribed(client, name) {
  const ch = client.subscribe(name);
  return new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', () => resolve(ch));
    ch.bind('pusher:subscription_error', (e) => reject(new Error(`subscribe ${name}: ${JSON.stringify(e)}`)));
  });
}

const received = (ch, event) => {
  const got = [];
  ch.bind(event, (data) => got.push(data));
  return got;
};

test('private channel, HTTP API trigger, whisper, toOthers and presence through the Pusher host', async () => {
  const a = connect('user-a');
  const b = connect('user-b');
  await waitFor(() => a.connection.state === 'connected' && b.connection.state === 'connected', 'both connections');
  assert.match(a.connection.socket_id, /^\d+\.\d+$/);

  const channel = 'private-e2e-' + process.pid;
  const [ca, cb] = await Promise.all([subscribed(a, channel), subscribed(b, channel)]);
  const gotA = received(ca, 'order.created');
  const gotB = received(cb, 'order.created');

  // The server SDK triggers through the HTTP API (/apps/{id}/events).
  await server.trigger(channel, 'order.created', { id: 7 });
  await waitFor(() => gotA.length === 1 && gotB.length === 1, 'the triggered event on both');
  assert.deepEqual(gotB[0], { id: 7 });

  // toOthers: the sender's socket id is excluded; b gets it.
  await server.trigger(channel, 'order.created', { id: 8 }, { socket_id: a.connection.socket_id });
  await waitFor(() => gotB.length === 2, 'the toOthers event on b');
  assert.deepEqual(gotB[1], { id: 8 });

  // A whisper (client event) from b reaches a.
  const whispers = received(ca, 'client-typing');
  cb.trigger('client-typing', { typing: true });
  await waitFor(() => whispers.length === 1, 'the whisper on a');
  assert.deepEqual(whispers[0], { typing: true });
  // a's own trigger of event 8 never arrived: a sees exactly one order.created.
  await server.trigger(channel, 'order.created', { id: 9 });
  await waitFor(() => gotA.length === 2, 'the third event on a');
  assert.deepEqual(gotA.map((e) => e.id), [7, 9]);

  // Presence: both users are members, seen by the client and the HTTP API.
  const presence = 'presence-e2e-' + process.pid;
  const [pa] = await Promise.all([subscribed(a, presence), subscribed(b, presence)]);
  await waitFor(() => pa.members.count === 2, 'two presence members');
  const res = await server.get({ path: `/channels/${presence}/users` });
  assert.equal(res.status, 200);
  const { users } = await res.json();
  assert.deepEqual(users.map((u) => u.id).sort(), ['user-a', 'user-b']);
});
