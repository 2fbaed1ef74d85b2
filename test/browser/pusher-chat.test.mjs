// Browser test of the presence chat page (/pusher.html: Laravel Echo +
// pusher-js): starts wslocal (WSLOCAL_BIN, with -web-node-modules from
// WEB_NODE_MODULES), has two tabs join one room, see each other in the member
// list, exchange a message and a "typing…" whisper, then one leaves.
// Screenshots go to ARTIFACTS_DIR; wslocal is stopped by its PID.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { launchChromium, startWslocal, stopWslocal } from './wslocal.mjs';

const bin = process.env.WSLOCAL_BIN;
const nodeModules = process.env.WEB_NODE_MODULES;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.ARTIFACTS_DIR || 'artifacts/browser';
if (!bin || !nodeModules) throw new Error('WSLOCAL_BIN and WEB_NODE_MODULES must be set');
mkdirSync(artifacts, { recursive: true });

function startGateway() {
  return startWslocal(bin, ['-web-node-modules', nodeModules], (out) => {
    const m = out.match(/Presence chat\s+(http:\/\/\S+)/);
    return m ? { page: m[1] } : null;
  });
}

const stopGateway = stopWslocal;

const gw = await startGateway();
let browser;
let failed = false;
const pages = [];
try {
  browser = await launchChromium(chromium, chromiumPath);
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(20000);
  for (const name of ['Ann', 'Bob']) {
    const page = await context.newPage();
    page.on('pageerror', (err) => { console.error(`tab ${name} page error:`, err); failed = true; });
    page.on('console', (msg) => { if (msg.type() === 'error') console.error(`tab ${name} console:`, msg.text()); });
    await page.goto(gw.page);
    await page.getByTestId('name').fill(name);
    await page.getByTestId('join').click();
    await page.getByTestId('status').filter({ hasText: /^connected$/ }).waitFor();
    await page.getByTestId('members').locator('li', { hasText: name }).waitFor();
    pages.push(page);
  }
  const [ann, bob] = pages;
  await ann.getByTestId('members').locator('li', { hasText: 'Bob' }).waitFor();
  await bob.getByTestId('members').locator('li', { hasText: 'Ann' }).waitFor();
  for (const [page, who] of [[ann, 'Ann'], [bob, 'Bob']]) {
    const count = await page.getByTestId('members').locator('li').count();
    if (count !== 2) throw new Error(`${who}'s tab lists ${count} members, want 2`);
  }
  await bob.getByTestId('text').pressSequentially('hi');
  await ann.getByTestId('typing').filter({ hasText: 'Bob is typing…' }).waitFor();
  await bob.getByTestId('say').click();
  await ann.getByTestId('messages').locator('li', { hasText: 'Bob: hi' }).waitFor();
  await ann.screenshot({ path: join(artifacts, 'pusher-chat-ann.png'), fullPage: true });
  await bob.screenshot({ path: join(artifacts, 'pusher-chat-bob.png'), fullPage: true });
  await bob.close();
  await ann.getByTestId('members').locator('li', { hasText: 'Bob' }).waitFor({ state: 'detached' });
  console.log('presence chat browser test passed; screenshots in ' + artifacts);
} catch (err) {
  failed = true;
  console.error(err);
  for (const [i, p] of pages.entries()) {
    await p.screenshot({ path: join(artifacts, `pusher-chat-failure-${i}.png`), fullPage: true }).catch(() => {});
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
