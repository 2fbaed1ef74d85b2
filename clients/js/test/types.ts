// Compiled (never run) by `make test-js-client` with tsc --strict: the usage
// README.md documents must type-check against index.d.ts, with the ws
// package's WebSocket (Node 20) and the DOM's.
import WebSocket from 'ws';
import { Client, ConnectionClosedError, ProtocolError, type StreamPosition, type Subscription } from '../index.js';

declare function render(data: unknown, offset?: number): void;
declare function reloadFromServer(): void;

export async function documented(): Promise<void> {
  const client = new Client('wss://abc.execute-api.eu-west-1.amazonaws.com/prod', {
    token: async () => 'a.jwt',
    WebSocket,
  });
  new Client('wss://example.invalid/prod', { WebSocket: globalThis.WebSocket, token: 'a.jwt', pingInterval: 0 });
  await client.connect();

  const chat: Subscription = await client.subscribe('chat-42');
  chat.on('message', (data, frame) => render(data, frame.offset));
  chat.on('unrecovered', (position: StreamPosition | null) => { if (position) reloadFromServer(); });
  chat.on('subscribed', (reply) => console.log(reply.recovered, reply.publications));

  const r = await client.publish('chat-42', { text: 'hello' });
  console.log(r.offset, r.epoch);

  const room = await client.subscribe('presence-room-1');
  console.log([...room.members]);
  room.on('member_joined', (userId: string) => console.log(userId));
  room.on('member_left', (userId: string) => console.log(userId));

  const me = await client.whoami();
  console.log(me.connectionId, me.userId);
  const page = chat.position && await client.history('chat-42', { since: { offset: 0, epoch: chat.position.epoch }, limit: 50 });
  console.log(page);
  await client.ping();
  console.log(chat.recoveries, chat.unrecovered, chat.duplicates, client.connected, client.connections);

  client.on('error', (err) => { if (err instanceof ProtocolError) console.log(err.code, err.channel); });
  client.on('disconnected', ({ code, reason }) => console.log(code, reason));
  try {
    await chat.unsubscribe();
  } catch (err) {
    if (err instanceof ConnectionClosedError) console.log('closed');
  }
  client.close();
}
