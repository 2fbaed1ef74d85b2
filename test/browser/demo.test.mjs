// Browser test of the demo page: starts the wslocal binary (WSLOCAL_BIN) on a
// free loopback port, opens the page in two tabs of headless Chromium, makes
// them exchange a message on a channel, saves screenshots under
// ARTIFACTS_DIR, and stops wslocal by its PID.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startWslocal, stopWslocal } from './wslocal.mjs';

const bin = process.env.WSLOCAL_BIN;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.ARTIFACTS_DIR || 'artifacts/browser';
if (!bin) throw new Error('WSLOCAL_BIN must name the wslocal binary');
mkdirSync(artifacts, { recursive: true });

function startGateway() {
  return startWslocal(bin, [], (out) => {
    const m = out.match(/Demo page\s+(http:\/\/\S+)/);
    const ws = out.match(/WebSocket\s+(ws:\/\/\S+)/);
    return m && ws ? { page: m[1], ws: ws[1] } : null;
  });
}

const stopGateway = stopWslocal;

function check(cond, message) {
  if (!cond) throw new Error('check failed: ' + message);
}

const gw = await startGateway();
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
let failed = false;
const pages = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(20000);
  for (const name of ['A', 'B']) {
    const page = await context.newPage();
    page.on('pageerror', (err) => { console.error(`tab ${name} page error:`, err); failed = true; });
    page.on('console', (msg) => { if (msg.type() === 'error') console.error(`tab ${name} console:`, msg.text()); });
    await page.goto(gw.page);
    check(await page.getByTestId('url').inputValue() === gw.ws, 'the URL field is prefilled with ' + gw.ws);
    await page.getByTestId('connect').click();
    await page.getByTestId('status').filter({ hasText: /^connected$/ }).waitFor();
    await page.getByTestId('user-id').filter({ hasText: 'anonymous' }).waitFor();
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

  // ?url= overrides the endpoint (examples/chat points the page at a deployed wss URL).
  const override = await context.newPage();
  await override.goto(gw.page + '?url=' + encodeURIComponent('wss://example.execute-api.us-east-1.amazonaws.com/prod'));
  check(await override.getByTestId('url').inputValue() === 'wss://example.execute-api.us-east-1.amazonaws.com/prod', '?url= prefills the URL field');
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
  await browser.close();
  const code = await stopGateway(gw.child);
  if (code !== 0) {
    console.error('wslocal exited with ' + code + ' after SIGTERM');
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
