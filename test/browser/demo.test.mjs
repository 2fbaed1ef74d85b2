// Browser test of the demo page, which runs on the JavaScript client
// (clients/js, served as client.js): starts the wslocal binary (WSLOCAL_BIN)
// on a free loopback port with the JWT authorizer and history on chat-*,
// opens the page in two tabs of headless Chromium signed in as alice and bob,
// makes them exchange a message, watches presence, force-closes alice's
// connection through the management API while the server API publishes, and
// checks that her page recovered every message exactly once, in order. Saves
// screenshots under ARTIFACTS_DIR and stops wslocal by its PID.
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { launchChromium, startWslocal, stopWslocal } from './wslocal.mjs';

const bin = process.env.WSLOCAL_BIN;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.ARTIFACTS_DIR || 'artifacts/browser';
if (!bin) throw new Error('WSLOCAL_BIN must name the wslocal binary');
mkdirSync(artifacts, { recursive: true });

const SECRET = 'demo-page-test-secret-at-least-32-bytes';

// token signs an HS256 JWT for the built-in authorizer (-jwt-secret).
function token(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

function startGateway() {
  return startWslocal(bin, ['-pusher=false', '-jwt-secret', SECRET, '-history', 'chat-*:100:1h'], (out) => {
    const m = out.match(/Demo page\s+(http:\/\/\S+)/);
    const ws = out.match(/WebSocket\s+(ws:\/\/\S+)/);
    const inv = out.match(/Lambda Invoke\s+(http:\/\/\S+)/);
    return m && ws && inv ? { page: m[1], ws: ws[1], invoke: inv[1] } : null;
  });
}

const stopGateway = stopWslocal;

function check(cond, message) {
  if (!cond) throw new Error('check failed: ' + message);
}

// publish sends through the publisher's Invoke API and returns how many
// connections it reached live.
async function publish(channel, data) {
  const res = await fetch(gw.invoke, { method: 'POST', body: JSON.stringify({ action: 'sendToChannel', channel, data }) });
  const body = await res.json();
  check(res.ok && body.ok, 'sendToChannel: ' + JSON.stringify(body));
  return body.delivered;
}

// kick closes a connection through the management API, as API Gateway's
// 2-hour and idle closes do.
async function kick(connectionId) {
  const res = await fetch(`${gw.ws.replace(/^ws/, 'http')}/@connections/${encodeURIComponent(connectionId)}`, { method: 'DELETE' });
  check(res.status === 204, 'DELETE @connections answers 204, got ' + res.status);
}

const gw = await startGateway();
let browser;
let failed = false;
const pages = [];
try {
  // Inside the try: a browser that never starts still stops the gateway.
  browser = await launchChromium(chromium, chromiumPath);
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(20000);
  for (const [name, user] of [['A', 'alice'], ['B', 'bob']]) {
    const page = await context.newPage();
    page.on('pageerror', (err) => { console.error(`tab ${name} page error:`, err); failed = true; });
    page.on('console', (msg) => { if (msg.type() === 'error') console.error(`tab ${name} console:`, msg.text()); });
    await page.goto(gw.page + '?token=' + token(user));
    check(await page.getByTestId('url').inputValue() === gw.ws, 'the URL field is prefilled with ' + gw.ws);
    await page.getByTestId('connect').click();
    await page.getByTestId('status').filter({ hasText: /^connected$/ }).waitFor();
    await page.getByTestId('user-id').filter({ hasText: user }).waitFor();
    const id = await page.getByTestId('connection-id').textContent();
    check(/^[A-Za-z0-9]{15}=$/.test(id), `tab ${name} shows its connection id from whoami (${id})`);
    await page.getByTestId('channel').fill('lobby');
    await page.getByTestId('subscribe').click();
    await page.locator('#channel-list li[data-channel="lobby"]').waitFor();
    pages.push(page);
  }
  const [a, b] = pages;
  await a.getByTestId('message').fill('hello from tab A');
  await a.getByTestId('publish').click();
  await b.locator('#log li.message', { hasText: 'hello from tab A' }).waitFor();
  await b.getByTestId('message').fill('{"reply":"hi A, this is B"}');
  await b.getByTestId('publish').click();
  await a.locator('#log li.message', { hasText: '{"reply":"hi A, this is B"}' }).waitFor();
  check(await a.locator('#log li.message', { hasText: 'hello from tab A' }).count() === 0, 'a publisher does not receive its own message');

  // The counters strip polls GET /metrics: two tabs open, two messages delivered.
  await a.getByTestId('counters').waitFor();
  await a.getByTestId('counter-open').filter({ hasText: /^2$/ }).waitFor();
  await a.getByTestId('counter-delivered').filter({ hasText: /^2$/ }).waitFor();
  check(Number(await a.getByTestId('counter-received').textContent()) >= 6, 'whoami, subscribe and publish frames of both tabs are counted');

  // Presence: each tab lists both users; alice's tab hears bob join.
  for (const page of [a, b]) {
    await page.getByTestId('channel').fill('presence-room');
    await page.getByTestId('subscribe').click();
    await page.locator('#channel-list li[data-channel="presence-room"]').waitFor();
  }
  await a.locator('#log li.presence[data-user="bob"]', { hasText: 'bob joined presence-room' }).waitFor();
  for (const page of [a, b]) {
    for (const user of ['alice', 'bob']) await page.locator(`#members li[data-channel="presence-room"][data-user="${user}"]`).waitFor();
  }

  // History and recovery: alice follows chat-demo; the server API publishes;
  // her connection is closed while it publishes more. The page's client
  // reconnects, resubscribes with since and must show every message once, in order.
  await a.getByTestId('channel').fill('chat-demo');
  await a.getByTestId('subscribe').click();
  await a.locator('#channel-list li[data-channel="chat-demo"][data-offset="0"]').waitFor();
  const sent = [];
  const inGap = [];
  const send = async (text) => { sent.push(text); return publish('chat-demo', text); };
  await send('m1');
  await send('m2');
  const shown = a.locator('#log li.message[data-channel="chat-demo"]');
  await shown.nth(1).waitFor();
  let rounds = 0;
  // A close the client outran (it reconnected before the publish) proves
  // nothing: close again until publishes provably missed the connection.
  while (inGap.length === 0) {
    rounds++;
    check(rounds <= 5, 'five closes without one publish landing in the gap');
    const before = await a.getByTestId('connection-id').textContent();
    await kick(before);
    for (const text of [`gap${rounds}-a`, `gap${rounds}-b`]) {
      if (await send(text) === 0) inGap.push(text);
    }
    await a.locator('#log li.recovery[data-channel="chat-demo"]').nth(rounds - 1).waitFor();
    await a.getByTestId('status').filter({ hasText: /^connected$/ }).waitFor();
    await a.getByTestId('connection-id').filter({ hasText: /^[A-Za-z0-9]{15}=$/ }).filter({ hasNotText: before }).waitFor();
  }
  await send('after');
  await shown.nth(sent.length - 1).waitFor();
  await b.locator('#log li.presence[data-user="alice"]', { hasText: 'alice joined presence-room' }).waitFor();
  const got = await shown.evaluateAll((els) => els.map((el) => ({
    text: el.querySelector('.body').textContent, offset: Number(el.dataset.offset), recovered: el.classList.contains('recovered'),
  })));
  check(JSON.stringify(got.map((g) => g.text)) === JSON.stringify(sent), `every message exactly once, in order: ${JSON.stringify(got.map((g) => g.text))} vs ${JSON.stringify(sent)}`);
  check(got.every((g, i) => g.offset === i + 1), 'offsets 1..n: ' + got.map((g) => g.offset));
  for (const text of inGap) check(got.find((g) => g.text === text).recovered, `${text} (published while closed) is marked recovered`);
  check(await a.locator('#channel-list li[data-channel="chat-demo"]').getAttribute('data-offset') === String(sent.length), 'the chip shows the last offset');
  // Presence across the close: bob saw alice leave and come back; both lists are whole again.
  check(await b.locator('#log li.presence[data-user="alice"]', { hasText: 'alice left presence-room' }).count() >= 1, 'bob saw alice leave');
  for (const user of ['alice', 'bob']) await b.locator(`#members li[data-channel="presence-room"][data-user="${user}"]`).waitFor();
  await a.locator('#members li[data-channel="presence-room"][data-user="bob"]').waitFor();
  console.log(`recovery: ${sent.length} messages, ${inGap.length} published while closed, ${rounds} forced close(s)`);

  // ?url= overrides the endpoint (examples/chat points the page at a deployed wss URL).
  const override = await context.newPage();
  await override.goto(gw.page + '?url=' + encodeURIComponent('wss://example.execute-api.us-east-1.amazonaws.com/prod'));
  check(await override.getByTestId('url').inputValue() === 'wss://example.execute-api.us-east-1.amazonaws.com/prod', '?url= prefills the URL field');
  // This host's counters are not the other API's: the strip stays hidden
  // (the tabs above show it within one 2 s poll).
  await override.waitForTimeout(2500);
  check(await override.getByTestId('counters').isHidden(), 'no counters strip for an API on another host');
  await override.close();

  await b.screenshot({ path: join(artifacts, 'demo-tab-b.png'), fullPage: true });
  await a.screenshot({ path: join(artifacts, 'demo-tab-a.png'), fullPage: true });
  console.log('browser test passed; screenshots in ' + artifacts);
} catch (err) {
  failed = true;
  console.error(err);
  for (const [i, p] of pages.entries()) {
    await p.screenshot({ path: join(artifacts, `failure-tab-${i}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  if (browser) await browser.close();
  const code = await stopGateway(gw.child);
  if (code !== 0) {
    console.error('wslocal exited with ' + code + ' after SIGTERM');
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
