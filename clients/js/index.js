// @wsforge/realtime-client: a dependency-free client for protocol v1 of the
// serverless WebSocket module (docs/protocol.md). Browsers and Node 20+.
// See README.md for the API.

const PUSH_TYPES = new Set(['message', 'member_joined', 'member_left']);
const REPLY_TYPES = new Set(['subscribed', 'unsubscribed', 'published', 'pong', 'whoami', 'history', 'error']);

/** Error raised for an error reply ({"type":"error","code","message"}). */
export class ProtocolError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** Error raised when a request's connection closed before its reply. */
export class ConnectionClosedError extends Error {
  constructor() {
    super('connection closed before the reply');
    this.name = 'ConnectionClosedError';
  }
}

class Emitter {
  constructor() { this._handlers = new Map(); }
  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) { this._handlers.get(event)?.delete(fn); }
  emit(event, ...args) {
    for (const fn of [...(this._handlers.get(event) || [])]) {
      try { fn(...args); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }
}

/**
 * A channel subscription. It lives across reconnects: after any close the
 * client resubscribes with the last offset and epoch it saw, and the server's
 * recovered messages are delivered in order, each exactly once.
 */
export class Subscription extends Emitter {
  constructor(client, channel) {
    super();
    this.client = client;
    this.channel = channel;
    /** Stream position of the last delivered message ({offset, epoch}), or null on channels without history. */
    this.position = null;
    /** Users of a presence channel (a Set of userIds). */
    this.members = new Set();
    /** How many resubscribes recovered every missed message, and how many could not. */
    this.recoveries = 0;
    this.unrecovered = 0;
    /** How many messages arrived twice (live and recovered) and were dropped by offset. */
    this.duplicates = 0;
    this._active = true;
    this._pending = null; // messages that arrived while a (re)subscribe was in flight
  }

  /** Leaves the channel. */
  async unsubscribe() {
    this._active = false;
    this.client._subs.delete(this.channel);
    if (this.client.connected) await this.client._request({ action: 'unsubscribe', channel: this.channel });
  }

  _push(frame) {
    if (frame.type === 'member_joined') { this.members.add(frame.userId); this.emit('member_joined', frame.userId); return; }
    if (frame.type === 'member_left') { this.members.delete(frame.userId); this.emit('member_left', frame.userId); return; }
    if (this._pending) { this._pending.push(frame); return; }
    const pos = this.position;
    if (typeof frame.offset === 'number' && pos && pos.epoch === frame.epoch && frame.offset > pos.offset + 1) {
      this._fillGap(pos, frame);
      return;
    }
    this._deliver(frame);
  }

  // _fillGap reads the messages a live delivery skipped (a send that failed
  // while the connection stayed open) from the history, holding later
  // messages back until they are delivered in order.
  _fillGap(pos, frame) {
    const owner = {};
    this._pending = [frame];
    this._pendingOwner = owner;
    const done = (reply) => {
      if (this._pendingOwner !== owner) return; // the connection closed: the resubscribe recovers
      const pending = this._pending;
      this._pending = null;
      this._pendingOwner = null;
      const pubs = reply && reply.epoch === pos.epoch ? reply.publications || [] : [];
      const covered = pubs.length === frame.offset - pos.offset - 1;
      for (const p of pubs) this._deliver({ type: 'message', channel: this.channel, data: p.data, offset: p.offset, epoch: pos.epoch, recovered: true });
      if (!covered) {
        this.unrecovered++;
        this.emit('unrecovered', { offset: frame.offset, epoch: frame.epoch });
      }
      pending.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
      for (const f of pending) this._deliver(f);
    };
    this.client.history(this.channel, { since: pos, limit: Math.min(1000, frame.offset - pos.offset - 1) }).then(done, () => done(null));
  }

  _deliver(frame) {
    if (typeof frame.offset !== 'number') { this.emit('message', frame.data, frame); return; }
    const pos = this.position;
    if (pos && pos.epoch === frame.epoch && frame.offset <= pos.offset) { this.duplicates++; return; }
    this.position = { offset: frame.offset, epoch: frame.epoch };
    this.emit('message', frame.data, frame);
  }

  // _subscribed handles the reply to a (re)subscribe.
  _subscribed(reply) {
    const pending = this._pending || [];
    this._pending = null;
    this._pendingOwner = null;
    if (Array.isArray(reply.members)) this.members = new Set(reply.members.map((m) => m.userId));
    if (typeof reply.offset === 'number') {
      if (reply.recovered === true) {
        this.recoveries++;
        for (const p of reply.publications || []) {
          this._deliver({ type: 'message', channel: this.channel, data: p.data, offset: p.offset, epoch: reply.epoch, recovered: true });
        }
      } else {
        if (reply.recovered === false) {
          this.unrecovered++;
          this.emit('unrecovered', { offset: reply.offset, epoch: reply.epoch });
        }
        this.position = { offset: reply.offset, epoch: reply.epoch };
      }
    } else if (reply.recovered === false) {
      this.unrecovered++;
      this.emit('unrecovered', null);
    }
    pending.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
    for (const f of pending) this._deliver(f);
    this.emit('subscribed', reply);
  }
}

function defaultWebSocket() {
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  throw new Error('no global WebSocket: pass options.WebSocket (e.g. the ws package in Node 20)');
}

/**
 * Client for protocol v1. It connects, reconnects with exponential backoff
 * and jitter, keeps the connection alive with pings, and resubscribes with
 * recovery after any close.
 */
export class Client extends Emitter {
  /**
   * @param {string} url  wss://…/{stage}
   * @param {object} [options]  see index.d.ts
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = {
      token: undefined, tokenParam: 'token', protocols: undefined,
      minReconnectDelay: 500, maxReconnectDelay: 30000,
      pingInterval: 240000, requestTimeout: 10000,
      ...options,
    };
    this._WebSocket = this.options.WebSocket || defaultWebSocket();
    this._subs = new Map();
    this._queue = [];
    this._inflight = null;
    this._ws = null;
    this._closed = true;
    this._attempt = 0;
    this._timer = null;
    this._pingTimer = null;
    /** Number of connections opened so far. */
    this.connections = 0;
  }

  /** True while the socket is open. */
  get connected() { return !!this._ws && this._ws.readyState === 1 && this._open; }

  /** Opens the connection (and keeps it open until close()); resolves once open. */
  connect() {
    this._closed = false;
    const opened = new Promise((resolve) => {
      if (this.connected) return resolve();
      const off = this.on('connected', () => { off(); resolve(); });
    });
    if (!this._ws && !this._timer) this._dial();
    return opened;
  }

  /** Closes the connection for good: no reconnect; pending requests fail. */
  close() {
    this._closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    if (ws) ws.close(1000, 'client closed');
    for (const r of this._queue.splice(0)) this._fail(r, new ConnectionClosedError());
  }

  /** Subscribes to channel; resolves with the Subscription after the first subscribed reply. */
  subscribe(channel) {
    let sub = this._subs.get(channel);
    if (sub) return Promise.resolve(sub);
    sub = new Subscription(this, channel);
    this._subs.set(channel, sub);
    return new Promise((resolve, reject) => {
      sub._ready = { resolve, reject };
      if (this.connected) this._resubscribe(sub);
    });
  }

  /** Publishes data (any JSON value) to a channel the client joined; resolves with the published reply. */
  publish(channel, data) { return this._request({ action: 'publish', channel, data }); }

  /** Resolves with {connectionId, userId}. */
  async whoami() {
    const r = await this._request({ action: 'whoami' });
    return { connectionId: r.connectionId, userId: r.userId };
  }

  /** Reads a history channel's messages after since ({offset, epoch}); resolves with the history reply. */
  history(channel, { since, limit } = {}) {
    const frame = { action: 'history', channel };
    if (since) frame.since = since;
    if (limit) frame.limit = limit;
    return this._request(frame);
  }

  /** Sends a ping; resolves on pong. */
  ping() { return this._request({ action: 'ping' }); }

  async _url() {
    let token = this.options.token;
    if (typeof token === 'function') token = await token();
    if (!token) return this.url;
    const u = new URL(this.url);
    u.searchParams.set(this.options.tokenParam, token);
    return u.toString();
  }

  async _dial() {
    this._timer = null;
    let url;
    try { url = await this._url(); } catch (err) { this.emit('error', err); this._scheduleReconnect(); return; }
    if (this._closed) return;
    const ws = new this._WebSocket(url, this.options.protocols);
    this._ws = ws;
    this._open = false;
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._open = true;
      this._attempt = 0;
      this.connections++;
      this._startPing();
      for (const sub of this._subs.values()) this._resubscribe(sub);
      this.emit('connected');
      this._pump();
    };
    ws.onmessage = (ev) => { if (ws === this._ws) this._frame(typeof ev.data === 'string' ? ev.data : String(ev.data)); };
    ws.onerror = () => {};
    ws.onclose = (ev) => { if (ws === this._ws) this._onClose(ev); };
  }

  _onClose(ev) {
    this._ws = null;
    this._open = false;
    clearInterval(this._pingTimer);
    if (this._inflight) { this._fail(this._inflight, new ConnectionClosedError()); this._inflight = null; }
    // Resubscribes belong to the closed connection; the next one sends its own.
    this._queue = this._queue.filter((r) => {
      if (!r.perConnection) return true;
      this._fail(r, new ConnectionClosedError());
      return false;
    });
    for (const sub of this._subs.values()) { sub._pending = null; sub._pendingOwner = null; }
    this.emit('disconnected', { code: ev.code, reason: ev.reason });
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._closed) return;
    const { minReconnectDelay: min, maxReconnectDelay: max } = this.options;
    const ceiling = Math.min(max, min * 2 ** this._attempt);
    this._attempt++;
    // Equal jitter: half fixed, half random, so a crowd does not reconnect at once.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._timer = setTimeout(() => this._dial(), delay);
  }

  _startPing() {
    clearInterval(this._pingTimer);
    if (!this.options.pingInterval) return;
    this._pingTimer = setInterval(() => {
      this.ping().catch(() => { if (this._ws) this._ws.close(4000, 'ping failed'); });
    }, this.options.pingInterval);
    this._pingTimer.unref?.();
  }

  _resubscribe(sub) {
    const frame = { action: 'subscribe', channel: sub.channel };
    if (sub.position) frame.since = sub.position;
    sub._pending = [];
    sub._pendingOwner = 'subscribe';
    this._request(frame, true).then((reply) => {
      if (!sub._active) return;
      sub._subscribed(reply);
      if (sub._ready) { sub._ready.resolve(sub); sub._ready = null; }
    }, (err) => {
      if (err instanceof ConnectionClosedError) return; // the next connection resubscribes
      this._subs.delete(sub.channel);
      sub._active = false;
      if (sub._ready) { sub._ready.reject(err); sub._ready = null; } else this.emit('error', err);
    });
  }

  _request(frame, perConnection = false) {
    return new Promise((resolve, reject) => {
      const r = { frame, resolve, reject, perConnection };
      r.timer = setTimeout(() => {
        if (this._inflight === r) {
          // A reply that never came leaves the connection out of step: start over.
          this._inflight = null;
          this._ws?.close(4000, 'request timed out');
        } else {
          this._queue = this._queue.filter((q) => q !== r);
        }
        reject(new Error(`no reply to ${frame.action} within ${this.options.requestTimeout} ms`));
      }, this.options.requestTimeout);
      this._queue.push(r);
      this._pump();
    });
  }

  _fail(r, err) { clearTimeout(r.timer); r.reject(err); }

  // _pump sends the next request when none is in flight: v1 replies carry no
  // request id, so one request at a time keeps every reply matched.
  _pump() {
    if (this._inflight || !this.connected || this._queue.length === 0) return;
    const r = this._queue.shift();
    this._inflight = r;
    this._ws.send(JSON.stringify(r.frame));
  }

  _frame(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { this.emit('message', text); return; }
    if (frame && PUSH_TYPES.has(frame.type) && typeof frame.channel === 'string') {
      const sub = this._subs.get(frame.channel);
      if (sub) sub._push(frame); else this.emit('message', frame);
      return;
    }
    const r = this._inflight;
    if (!r || !frame || !REPLY_TYPES.has(frame.type)) { this.emit('message', frame); return; }
    this._inflight = null;
    clearTimeout(r.timer);
    if (frame.type === 'error') r.reject(new ProtocolError(frame.code, frame.message));
    else r.resolve(frame);
    this._pump();
  }
}
