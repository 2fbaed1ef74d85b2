// Demo client for protocol v1 (docs/protocol.md). No dependencies, no build step.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = { ws: null, channels: new Set() };

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
    renderChannels();
  }

  function setStatus(text, cls) {
    const el = $('status');
    el.textContent = text;
    el.className = 'status ' + cls;
  }

  function setConnected(on) {
    $('connect').disabled = on;
    $('disconnect').disabled = !on;
    ['whoami', 'ping', 'subscribe', 'publish'].forEach((id) => { $(id).disabled = !on; });
    $('url').disabled = on;
    $('token').disabled = on;
  }

  function log(kind, text, meta) {
    const li = document.createElement('li');
    li.className = 'entry ' + kind;
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
  }

  function send(frame) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(frame);
    state.ws.send(text);
    log('out', text, '→ ' + frame.action);
  }

  function renderChannels() {
    const list = $('channel-list');
    list.replaceChildren();
    const select = $('publish-channel');
    const selected = select.value;
    select.replaceChildren();
    if (state.channels.size === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'Not subscribed to any channel yet.';
      list.append(li);
      const opt = document.createElement('option');
      opt.textContent = '(subscribe first)';
      opt.value = '';
      select.append(opt);
      return;
    }
    for (const ch of [...state.channels].sort()) {
      const li = document.createElement('li');
      li.className = 'chip';
      li.dataset.channel = ch;
      li.textContent = ch;
      const x = document.createElement('button');
      x.type = 'button';
      x.title = 'unsubscribe';
      x.textContent = '×';
      x.addEventListener('click', () => send({ action: 'unsubscribe', channel: ch }));
      li.append(x);
      list.append(li);
      const opt = document.createElement('option');
      opt.value = ch;
      opt.textContent = ch;
      select.append(opt);
    }
    if (state.channels.has(selected)) select.value = selected;
  }

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { log('in', String(ev.data), '← text'); return; }
    switch (msg.type) {
      case 'message':
        log('message', typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data), '#' + msg.channel);
        return;
      case 'subscribed':
        state.channels.add(msg.channel);
        renderChannels();
        break;
      case 'unsubscribed':
        state.channels.delete(msg.channel);
        renderChannels();
        break;
      case 'whoami':
        $('connection-id').textContent = msg.connectionId;
        $('user-id').textContent = msg.userId === null ? 'anonymous' : msg.userId;
        break;
      case 'error':
        log('error', msg.code + ': ' + msg.message, '← error');
        return;
    }
    log('in', ev.data, '← ' + (msg.type || 'frame'));
  }

  function connect() {
    let url;
    try {
      url = new URL($('url').value.trim());
    } catch (_) {
      log('error', 'Not a valid URL: ' + $('url').value, 'error');
      return;
    }
    const token = $('token').value.trim();
    if (token) url.searchParams.set('token', token);
    setStatus('connecting…', 'wait');
    const ws = new WebSocket(url.toString());
    state.ws = ws;
    ws.addEventListener('open', () => {
      setStatus('connected', 'on');
      setConnected(true);
      log('system', 'Connected to ' + $('url').value.trim(), 'open');
      send({ action: 'whoami' });
    });
    ws.addEventListener('message', onMessage);
    ws.addEventListener('close', (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.channels.clear();
      renderChannels();
      setConnected(false);
      setStatus('disconnected', 'off');
      $('connection-id').textContent = '–';
      $('user-id').textContent = '–';
      const why = ev.code === 1006 ? ' (handshake refused or connection lost)' : '';
      log('system', 'Closed with code ' + ev.code + (ev.reason ? ' ' + ev.reason : '') + why, 'close');
    });
  }

  $('connect-form').addEventListener('submit', (e) => { e.preventDefault(); connect(); });
  $('disconnect').addEventListener('click', () => { if (state.ws) state.ws.close(1000, 'bye'); });
  $('whoami').addEventListener('click', () => send({ action: 'whoami' }));
  $('ping').addEventListener('click', () => send({ action: 'ping' }));
  $('clear').addEventListener('click', () => $('log').replaceChildren());
  $('subscribe-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const ch = $('channel').value.trim();
    if (ch) send({ action: 'subscribe', channel: ch });
  });
  $('publish-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const ch = $('publish-channel').value;
    const text = $('message').value;
    if (!ch || text === '') return;
    let data = text;
    try { data = JSON.parse(text); } catch (_) { /* plain text */ }
    send({ action: 'publish', channel: ch, data: data });
    $('message').value = '';
  });

  init();
})();

// Live counters strip: polls the local gateway's GET /metrics (Prometheus
// text, docs/operations.md) every 2 s. A deployed API has no /metrics, so
// the strip stays hidden there.
(function () {
  'use strict';

  const strip = document.getElementById('counters');
  if (!strip || !location.protocol.startsWith('http')) return;

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
