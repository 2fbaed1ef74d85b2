// The recovery scenario (docs/benchmarks.md): wslocal closes every
// connection after -max-duration (5 s) while a publisher sends to a history
// channel through the server API; every subscriber (this client) must end
// with every message exactly once, in order.
//
// Knobs: SCENARIO_SUBSCRIBERS (50), SCENARIO_RATE (messages/s, 50),
// SCENARIO_SECONDS (60; make test runs 15), SCENARIO_MAX_DURATION (5s),
// SCENARIO_TIMEOUT_SECONDS (SECONDS*20+300), WSLOCAL_ARGS (e.g. -dynamodb-endpoint). The report is printed as JSON
// and written to SCENARIO_REPORT when set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { start, client, publish, waitFor } from './helpers.mjs';

const SUBSCRIBERS = Number(process.env.SCENARIO_SUBSCRIBERS || 50);
const RATE = Number(process.env.SCENARIO_RATE || 50);
const SECONDS = Number(process.env.SCENARIO_SECONDS || 60);
const MAX_DURATION = process.env.SCENARIO_MAX_DURATION || '5s';
const CHANNEL = 'chat-scenario';
// A guard, not a measurement: on a loaded machine with DynamoDB Local the
// publisher falls well behind its pace (docs/benchmarks.md).
const TIMEOUT_SECONDS = Number(process.env.SCENARIO_TIMEOUT_SECONDS || SECONDS * 20 + 300);

let gw;
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  if (gw) await gw.stop();
});

test(`${SUBSCRIBERS} subscribers, ${RATE} msg/s for ${SECONDS} s, connections closed every ${MAX_DURATION}`, { timeout: TIMEOUT_SECONDS * 1000 }, async () => {
  // Room for every message of the run, so no recovery can outrun the history.
  gw = await start(['-history', `${CHANNEL}:${RATE * SECONDS + 100}:1h`, '-max-duration', MAX_DURATION, '-max-processes', '8']);
  const subs = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const c = client(gw.url, `user-${i}`, { minReconnectDelay: 50, maxReconnectDelay: 1000 });
    clients.push(c);
    const state = { got: 0, duplicates: 0, outOfOrder: 0, last: 0 };
    await c.connect();
    const sub = await c.subscribe(CHANNEL);
    sub.on('message', (n) => {
      if (n <= state.last) { if (n === state.last) state.duplicates++; else state.outOfOrder++; return; }
      if (n !== state.last + 1) state.outOfOrder++;
      state.last = n;
      state.got++;
    });
    subs.push({ c, sub, state });
  }

  const total = RATE * SECONDS;
  const t0 = Date.now();
  for (let n = 1; n <= total; n++) {
    const due = t0 + (n * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await publish(gw.invoke, CHANNEL, n);
  }
  const publishSeconds = (Date.now() - t0) / 1000;
  // The last close of each connection may come after the last publish: wait
  // until every subscriber caught up (recovering if it has to).
  await waitFor(() => subs.every((s) => s.state.last === total), 'every subscriber to get every message', 60000);

  const report = {
    store: (process.env.WSLOCAL_ARGS || '').includes('-dynamodb-endpoint') ? 'DynamoDB Local' : 'embedded',
    subscribers: SUBSCRIBERS, messages: total, seconds: SECONDS, publishSeconds: Number(publishSeconds.toFixed(1)),
    maxDuration: MAX_DURATION,
    connections: subs.reduce((a, s) => a + s.c.connections, 0),
    recoveries: subs.reduce((a, s) => a + s.sub.recoveries, 0),
    unrecovered: subs.reduce((a, s) => a + s.sub.unrecovered, 0),
    droppedByOffset: subs.reduce((a, s) => a + s.sub.duplicates, 0),
    lost: subs.reduce((a, s) => a + (total - s.state.got), 0),
    duplicates: subs.reduce((a, s) => a + s.state.duplicates, 0),
    outOfOrder: subs.reduce((a, s) => a + s.state.outOfOrder, 0),
  };
  console.log('scenario report ' + JSON.stringify(report));
  if (process.env.SCENARIO_REPORT) writeFileSync(process.env.SCENARIO_REPORT, JSON.stringify(report, null, 2) + '\n');
  assert.equal(report.lost, 0);
  assert.equal(report.duplicates, 0);
  assert.equal(report.outOfOrder, 0);
  // The history holds every message of the run for an hour: every recovery
  // must be complete (recovered:true), none may fall back to a gap.
  assert.equal(report.unrecovered, 0, 'no resubscribe answered recovered:false');
  assert.ok(report.connections > SUBSCRIBERS, 'connections were closed and reopened');
});
