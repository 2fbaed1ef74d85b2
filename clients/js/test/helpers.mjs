// Shared helpers of the client tests: wslocal by PID, HS256 tokens, the
// publisher's Invoke API, closing connections through @connections.
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { startWslocal, stopWslocal } from '../../../test/browser/wslocal.mjs';
import { Client } from '../index.js';

export const SECRET = 'client-tests-secret-at-least-32-bytes-long';

export function token(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

// start runs wslocal (WSLOCAL_BIN) with the JWT authorizer and extra flags.
export async function start(args) {
  const bin = process.env.WSLOCAL_BIN;
  if (!bin) throw new Error('WSLOCAL_BIN must name the wslocal binary');
  const extra = (process.env.WSLOCAL_ARGS || '').split(/\s+/).filter(Boolean);
  const { child, url, invoke } = await startWslocal(bin, ['-pusher=false', '-jwt-secret', SECRET, ...args, ...extra], (out) => {
    const ws = out.match(/WebSocket\s+(ws:\/\/\S+)/);
    const inv = out.match(/Lambda Invoke\s+(http:\/\/\S+)/);
    return ws && inv ? { url: ws[1], invoke: inv[1] } : null;
  }, 120000);
  return { child, url, invoke, stop: () => stopWslocal(child, 30000) };
}

export function client(url, user, options = {}) {
  return new Client(url, { WebSocket, token: token(user), minReconnectDelay: 20, maxReconnectDelay: 500, ...options });
}

// publish sends through the publisher function's Invoke API (the server API).
export async function publish(invoke, channel, data) {
  const res = await fetch(invoke, { method: 'POST', body: JSON.stringify({ action: 'sendToChannel', channel, data }) });
  const body = await res.json();
  if (!res.ok || !body.ok) throw new Error('sendToChannel failed: ' + JSON.stringify(body));
  return body;
}

// kick closes a connection through the management API (DELETE @connections/{id}).
export async function kick(url, connectionId) {
  const http = url.replace(/^ws/, 'http');
  const res = await fetch(`${http}/@connections/${encodeURIComponent(connectionId)}`, { method: 'DELETE' });
  if (res.status !== 204 && res.status !== 410) throw new Error('DELETE @connections: ' + res.status);
}

// waitFor polls cond until it holds (no fixed sleeps; the runner's timeout bounds it).
export async function waitFor(cond, what, tries = 6000) {
  for (let i = 0; ; i++) {
    const v = await cond();
    if (v) return v;
    if (i > tries) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}
