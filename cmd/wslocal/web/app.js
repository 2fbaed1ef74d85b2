// Demo page for protocol v1 (docs/protocol.md), built on the JavaScript
// client (clients/js, served by wslocal as client.js): it reconnects with
// backoff, resubscribes with recovery after any close, and tracks presence.
// No build step.
import { Client } from './client.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { client: null, subs: new Map() };

function defaultURL(stage) {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  return scheme + (location.host || '127.0.0.1:8080') + '/' + stage;
}

async function init() {
  let stage = 'dev';
  if (!params.get('url') && location.protocol.startsWith('http')) {
    try {
      const res = await fetch('config.json', { cache: 'no-store' });
      if (res.ok) stage = (await res.json()).stage || stage;
    } catch (_) { /* served elsewhere: keep the default */ }
  }
  $('url').value = params.get('url') || defaultURL(stage);
  $('token').value = params.get('token') || '';
  if (params.get('channel')) $('channel').value = params.get('channel');
  render();
}

function setStatus(text, cls) {
  const el = $('status');
  el.textContent = text;
  el.className = 'status ' + cls;
}

function setConnected(on) {
  $('connect').disabled = !!state.client;
  $('disconnect').disabled = !state.client;
  ['whoami', 'ping', 'subscribe', 'publish'].forEach((id) => { $(id).disabled = !on; });
  $('url').disabled = !!state.client;
  $('token').disabled = !!state.client;
}

function log(kind, text, meta, attrs) {
  const li = document.createElement('li');
  li.className = 'entry ' + kind;
  Object.assign(li.dataset, attrs || {});
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.textContent = meta || kind;
  const body = document.createElement('span');
  body.className = 'body';
  body.textContent = text;
  li.append(time, tag, body);
  const list = $('log');
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return li;
}

const show = (data) => (typeof data === 'string' ? data : JSON.stringify(data));
const fail = (what) => (err) => log('error', what + ': ' + err.message, '← error');

// render draws the channel chips (with each stream's offset), the publish
// menu and the members of presence channels.
function render() {
  const list = $('channel-list');
  const select = $('publish-channel');
  const members = $('members');
  const selected = select.value;
  list.replaceChildren();
  select.replaceChildren();
  members.replaceChildren();
  if (state.subs.size === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'Not subscribed to any channel yet.';
    list.append(li);
    const opt = document.createElement('option');
    opt.textContent = '(subscribe first)';
    opt.value = '';
    select.append(opt);
  }
  for (const [ch, sub] of [...state.subs].sort(([a], [b]) => a.localeCompare(b))) {
    const li = document.createElement('li');
    li.className = 'chip';
    li.dataset.channel = ch;
    li.append(ch);
    if (sub.position) {
      li.dataset.offset = String(sub.position.offset);
      const at = document.createElement('span');
      at.className = 'offset';
      at.title = 'offset of the last message (epoch ' + sub.position.epoch + ')';
      at.textContent = '@' + sub.position.offset;
      li.append(at);
    }
    const x = document.createElement('button');
    x.type = 'button';
    x.title = 'unsubscribe';
    x.textContent = '×';
    x.addEventListener('click', () => unsubscribe(ch));
    li.append(x);
    list.append(li);
    const opt = document.createElement('option');
    opt.value = ch;
    opt.textContent = ch;
    select.append(opt);
    if (ch.startsWith('presence-')) {
      for (const user of [...sub.members].sort()) {
        const m = document.createElement('li');
        m.className = 'chip member';
        m.dataset.channel = ch;
        m.dataset.user = user;
        m.textContent = user + ' · ' + ch;
        members.append(m);
      }
    }
  }
  if (state.subs.size > 0 && members.childElementCount === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'No presence channel (subscribe to presence-… with a token).';
    members.append(li);
  }
  if (state.subs.has(selected)) select.value = selected;
}

async function whoami() {
  const me = await state.client.whoami();
  $('connection-id').textContent = me.connectionId;
  $('user-id').textContent = me.userId === null ? 'anonymous' : me.userId;
}

function connect() {
  let url;
  try {
    url = new URL($('url').value.trim());
  } catch (_) {
    log('error', 'Not a valid URL: ' + $('url').value, 'error');
    return;
  }
  const client = new Client(url.toString(), { token: $('token').value.trim() || undefined });
  state.client = client;
  setStatus('connecting…', 'wait');
  setConnected(false);
  client.on('connected', () => {
    setStatus('connected', 'on');
    setConnected(true);
    const again = client.connections > 1;
    log('system', (again ? 'Reconnected to ' : 'Connected to ') + url.host + url.pathname, again ? 'reopen' : 'open');
    whoami().catch(fail('whoami'));
  });
  client.on('disconnected', (ev) => {
    setStatus('reconnecting…', 'wait');
    setConnected(false);
    $('connection-id').textContent = '–';
    const why = ev.code === 1006 ? ' (handshake refused or connection lost)' : '';
    log('system', 'Closed with code ' + ev.code + (ev.reason ? ' ' + ev.reason : '') + why + '; reconnecting, then recovering missed messages', 'close');
  });
  client.on('message', (frame) => log('in', show(frame), '← frame'));
  client.on('error', fail('client'));
  client.connect();
}

function disconnect() {
  if (!state.client) return;
  state.client.close();
  state.client = null;
  state.subs.clear();
  render();
  setConnected(false);
  setStatus('disconnected', 'off');
  $('connection-id').textContent = '–';
  $('user-id').textContent = '–';
  log('system', 'Disconnected', 'close');
}

async function subscribe(ch) {
  if (state.subs.has(ch)) return;
  const sub = await state.client.subscribe(ch);
  state.subs.set(ch, sub);
  sub.on('message', (data, frame) => {
    const attrs = { channel: ch };
    let meta = '#' + ch;
    if (typeof frame.offset === 'number') {
      attrs.offset = String(frame.offset);
      meta += ' @' + frame.offset;
    }
    if (frame.recovered) meta += ' ↺';
    const li = log('message', show(data), meta, attrs);
    if (frame.recovered) li.classList.add('recovered');
    render();
  });
  sub.on('subscribed', (reply) => {
    render();
    if (reply.recovered === true) {
      const n = (reply.publications || []).length;
      log('recovery', `Recovered on ${ch}: ${n} missed message${n === 1 ? '' : 's'} (stream at offset ${reply.offset})`, '↺ recovered', { channel: ch, count: String(n) });
    }
  });
  sub.on('unrecovered', (pos) => {
    log('error', `Could not recover everything missed on ${ch}` + (pos ? ` (now at offset ${pos.offset}): reload its state` : ''), '↺ gap');
    render();
  });
  sub.on('member_joined', (user) => { log('presence', user + ' joined ' + ch, '+ member', { channel: ch, user }); render(); });
  sub.on('member_left', (user) => { log('presence', user + ' left ' + ch, '− member', { channel: ch, user }); render(); });
  const where = sub.position ? ` at offset ${sub.position.offset}` : '';
  const who = ch.startsWith('presence-') ? `; members: ${[...sub.members].sort().join(', ')}` : '';
  log('in', `Subscribed to ${ch}${where}${who}`, '← subscribed');
  render();
}

async function unsubscribe(ch) {
  const sub = state.subs.get(ch);
  if (!sub) return;
  state.subs.delete(ch);
  render();
  await sub.unsubscribe();
  log('in', 'Unsubscribed from ' + ch, '← unsubscribed');
}

$('connect-form').addEventListener('submit', (e) => { e.preventDefault(); connect(); });
$('disconnect').addEventListener('click', disconnect);
$('whoami').addEventListener('click', () => whoami().catch(fail('whoami')));
$('ping').addEventListener('click', () => state.client.ping().then(() => log('in', 'pong', '← pong'), fail('ping')));
$('clear').addEventListener('click', () => $('log').replaceChildren());
$('subscribe-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const ch = $('channel').value.trim();
  if (ch) subscribe(ch).catch(fail('subscribe ' + ch));
});
$('publish-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const ch = $('publish-channel').value;
  const text = $('message').value;
  if (!ch || text === '') return;
  let data = text;
  try { data = JSON.parse(text); } catch (_) { /* plain text */ }
  $('message').value = '';
  state.client.publish(ch, data).then((r) => {
    const at = typeof r.offset === 'number' ? ' at offset ' + r.offset : '';
    log('out', `${show(data)} (published to ${ch}${at})`, '→ publish', { channel: ch });
  }, fail('publish to ' + ch));
});

init();

// Live counters strip: polls the local gateway's GET /metrics (Prometheus
// text, docs/operations.md) every 2 s. A deployed API has no /metrics, so
// the strip stays hidden there, and when ?url= points the page at another
// host (examples/chat against AWS): this host's counters would not be its.
(function counters() {
  const strip = document.getElementById('counters');
  if (!strip || !location.protocol.startsWith('http')) return;
  try {
    if (params.get('url') && new URL(params.get('url')).host !== location.host) return;
  } catch (_) { return; }

  // parse sums the samples of each metric name, labels folded together.
  function parse(text) {
    const sums = {};
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
      if (m) sums[m[1]] = (sums[m[1]] || 0) + Number(m[3]);
    }
    return sums;
  }

  async function poll() {
    try {
      const res = await fetch('metrics', { cache: 'no-store' });
      if (!res.ok) return;
      const sums = parse(await res.text());
      if (!('websocket_connections_opened_total' in sums)) return;
      sums.open = sums.websocket_connections_opened_total - (sums.websocket_connections_closed_total || 0);
      for (const el of strip.querySelectorAll('[data-metric]')) {
        el.textContent = String(sums[el.dataset.metric] || 0);
      }
      strip.hidden = false;
    } catch (_) { /* gateway stopped: keep the last values */ }
  }

  poll();
  setInterval(poll, 2000);
})();
