// @wsforge/realtime-client: a dependency-free client for protocol v1 of the
// serverless WebSocket module (docs/protocol.md). Browsers and Node 20+.
// See README.md for the API.

const PUSH_TYPES = new Set(['message', 'member_joined', 'member_left']);
const REPLY_TYPES = new Set(['subscribed', 'unsubscribed', 'published', 'pong', 'whoami', 'history', 'error']);
// Error codes that refuse a subscribe for good; any other failure of a
// resubscribe is retried.
const REFUSALS = new Set(['forbidden', 'bad_request', 'too_many_channels', 'too_large', 'unknown_action']);

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
    /**
     * Stream position ({offset, epoch}): the last message delivered, passed over (a publish of this
     * client's own) or reported missing by `unrecovered`; null on channels without history.
     */
    this.position = null;
    /** Users of a presence channel (a Set of userIds). */
    this.members = new Set();
    /** How many resubscribes recovered every missed message, and how many times messages could not be recovered. */
    this.recoveries = 0;
    this.unrecovered = 0;
    /** How many messages arrived twice (live and recovered) and were dropped by offset. */
    this.duplicates = 0;
    this._active = true;
    this._pending = null; // messages that arrived while a (re)subscribe or a gap read was in flight
    this._pendingOwner = null;
    this._own = []; // positions of this client's own publishes, not yet passed
    this._retired = new Map(); // epochs the position left: epoch -> {offset, late: offsets delivered late}
    this._members = null; // member events that arrived while a (re)subscribe was in flight
    this._retries = 0;
    this._retryTimer = null;
  }

  /** Leaves the channel. */
  async unsubscribe() {
    this._active = false;
    clearTimeout(this._retryTimer);
    this.client._subs.delete(this.channel);
    if (this.client.connected) await this.client._request({ action: 'unsubscribe', channel: this.channel });
  }

  _push(frame) {
    if (frame.type === 'member_joined' || frame.type === 'member_left') {
      this._members?.push(frame);
      if (frame.type === 'member_joined') this.members.add(frame.userId); else this.members.delete(frame.userId);
      this.emit(frame.type, frame.userId);
      return;
    }
    if (this._pending) { this._pending.push(frame); return; }
    if (typeof frame.offset === 'number' && this._retired.has(frame.epoch)) { this._late(frame); return; }
    // A message that skips ahead of the stream (in its epoch: a new epoch
    // starts at offset 1) waits until the skipped ones are read.
    if (typeof frame.offset === 'number' && this.position && frame.offset > this._known(frame.epoch) + 1) {
      this._fillGap(frame.epoch, frame.offset, [frame]);
      return;
    }
    this._deliver(frame);
  }

  // _known is the offset of epoch's stream up to which every message was
  // delivered or passed over: the position (0 in another epoch), then this
  // client's own publishes that follow it.
  _known(epoch) {
    const pos = this.position;
    let offset = pos && pos.epoch === epoch ? pos.offset : 0;
    while (this._isOwn(offset + 1, epoch)) offset++;
    return offset;
  }

  // _late delivers a message of an epoch the position has left: its fan-out
  // took longer than the history's ttl, so the stream started a new epoch
  // before it arrived. It is delivered once, as it comes, and moves nothing:
  // the new epoch goes on, neither read again nor redelivered.
  _late(frame) {
    const r = this._retired.get(frame.epoch);
    if (frame.offset <= r.offset || r.late.has(frame.offset)) { this.duplicates++; return; }
    r.late.add(frame.offset);
    this.emit('message', frame.data, frame);
  }

  _isOwn(offset, epoch) { return this._own.some((p) => p.offset === offset && p.epoch === epoch); }

  // _moveTo sets the position, passing over the own publishes that follow it.
  _moveTo(offset, epoch) {
    while (this._isOwn(offset + 1, epoch)) offset++;
    const pos = this.position;
    const sameEpoch = !!pos && pos.epoch === epoch;
    if (pos && !sameEpoch) {
      this._retired.set(pos.epoch, { offset: pos.offset, late: new Set() });
      if (this._retired.size > 8) this._retired.delete(this._retired.keys().next().value);
    }
    this._retired.delete(epoch); // a server's reply named it current again
    this._own = this._own.filter((p) => (p.epoch === epoch ? p.offset > offset : sameEpoch));
    this.position = { offset, epoch };
  }

  // _published records the offset of this client's own publish (the server
  // does not send it back): it is neither read from the history nor delivered.
  _published(reply) {
    if (typeof reply.offset !== 'number' || typeof reply.epoch !== 'string') return;
    const pos = this.position;
    if (!pos || (pos.epoch === reply.epoch && reply.offset <= pos.offset) || this._retired.has(reply.epoch)) return;
    this._own.push({ offset: reply.offset, epoch: reply.epoch });
    if (!this._pending && this._known(reply.epoch) >= reply.offset) this._moveTo(pos.epoch === reply.epoch ? pos.offset : 0, reply.epoch);
  }

  // _fillGap reads from the history the messages of epoch before offset
  // until that were neither delivered nor passed over: those a live delivery
  // skipped (a send that failed while the connection stayed open, or
  // concurrent publishes delivered out of order), or the gap of a
  // resubscribe whose recovery did not fit in one reply. pending are the
  // messages held back meanwhile (more arrive while the read runs), delivered
  // in order after the gap. What the history no longer has is reported with
  // unrecovered, never skipped silently. It resolves to whether something
  // was missing, or null when the read was given up (the connection closed:
  // the next resubscribe recovers the gap).
  async _fillGap(epoch, until, pending) {
    const owner = {};
    this._pending = pending;
    this._pendingOwner = owner;
    const found = new Map();
    let read = 0;
    for (;;) {
      let since = 0;
      let reply;
      try {
        // Ahead of queued requests (the gap holds this channel's deliveries),
        // built when it is sent: a publish of this client's own answered
        // meanwhile may have closed the gap.
        reply = await this.client._request(() => {
          since = Math.max(read, this._known(epoch));
          if (since >= until - 1) return null;
          return { action: 'history', channel: this.channel, since: { offset: since, epoch }, limit: Math.min(1000, until - since - 1) };
        }, { perConnection: true, action: 'history', front: true });
      } catch {
        // The connection closed, or the read failed: start over on a new
        // connection, whose resubscribe recovers the gap.
        if (this._pendingOwner === owner) this.client._restart('history read failed');
        return null;
      }
      if (this._pendingOwner !== owner || !this._active) return null;
      // The reply starts at the oldest message kept, and in the current epoch.
      if (!reply || reply.epoch !== epoch) break;
      let last = since;
      for (const p of reply.publications || []) {
        if (p.offset > since && p.offset < until) { found.set(p.offset, p); last = Math.max(last, p.offset); }
      }
      if (last === since || last >= until - 1) break;
      read = last; // the reply was cut short (limit or size): read on
    }
    // The gap is filled from the history and from the live messages that
    // arrived meanwhile; only what neither has is missing.
    const held = [];
    const gap = new Map();
    for (const f of this._pending) {
      if (f.epoch === epoch && f.offset < until && !gap.has(f.offset)) gap.set(f.offset, f); else held.push(f);
    }
    for (const [offset, p] of found) gap.set(offset, { type: 'message', channel: this.channel, data: p.data, offset, epoch, recovered: true });
    this._pending = null;
    this._pendingOwner = null;
    const from = this._known(epoch);
    let lost = 0; // the last offset of the gap that is missing
    for (let o = from + 1; o < until; o++) if (!gap.has(o) && !this._isOwn(o, epoch)) lost = o;
    for (let o = from + 1; o < until; o++) {
      if (gap.has(o)) this._deliver(gap.get(o));
      if (o === lost) {
        this._moveTo(lost, epoch);
        this.unrecovered++;
        this.emit('unrecovered', { offset: lost, epoch });
      }
    }
    this._release(held);
    return lost !== 0;
  }

  async _recoverByPages(reply, pending) {
    const lost = await this._fillGap(reply.epoch, reply.offset + 1, pending);
    if (lost === null) return;
    if (!lost) this.recoveries++;
    this.emit('subscribed', reply);
  }

  _deliver(frame) {
    if (typeof frame.offset !== 'number') { this.emit('message', frame.data, frame); return; }
    const pos = this.position;
    if (pos && pos.epoch === frame.epoch && frame.offset <= pos.offset) { this.duplicates++; return; }
    const own = this._isOwn(frame.offset, frame.epoch);
    this._moveTo(frame.offset, frame.epoch);
    if (!own) this.emit('message', frame.data, frame);
  }

  // _release goes on with the messages held back: the position's epoch
  // first, each epoch in offset order.
  _release(frames) {
    const rank = new Map(this.position ? [[this.position.epoch, 0]] : []);
    for (const f of frames) if (!rank.has(f.epoch)) rank.set(f.epoch, rank.size);
    frames.sort((a, b) => rank.get(a.epoch) - rank.get(b.epoch) || (a.offset ?? 0) - (b.offset ?? 0));
    for (const f of frames) this._push(f);
    // Own publishes answered while the messages were held (the position
    // did not move then) are passed over now.
    if (!this._pending && this.position) this._moveTo(this.position.offset, this.position.epoch);
  }

  // _subscribed handles the reply to a (re)subscribe. The reply of the first
  // subscribe sets the position and members at once, but the messages held
  // meanwhile (and later ones) are delivered, and 'subscribed' emitted, only
  // after subscribe() has resolved, so that handlers attached after
  // `await client.subscribe(...)` get every message after the position.
  _subscribed(reply, first = false) {
    const pending = this._pending || [];
    const events = this._members || [];
    this._pending = null;
    this._pendingOwner = null;
    this._members = null;
    if (Array.isArray(reply.members)) {
      // The reply's list, then the joins and leaves that overtook it.
      const before = this.members;
      this.members = new Set(reply.members.map((m) => m.userId));
      for (const e of events) {
        if (e.type === 'member_joined') this.members.add(e.userId); else this.members.delete(e.userId);
      }
      if (!first) {
        // A resubscribe: the joins and leaves missed while disconnected.
        for (const u of before) if (!this.members.has(u)) this.emit('member_left', u);
        for (const u of this.members) if (!before.has(u)) this.emit('member_joined', u);
      }
    }
    if (typeof reply.offset === 'number') {
      if (reply.recovered === false && this.position && this.position.epoch === reply.epoch && reply.offset > this._known(reply.epoch)) {
        // Recovery refused in the same epoch: the missed messages would
        // pass 128 KB in one reply, or some are past the history. Read them
        // with history, page by page: what is kept is delivered, only what
        // is not is reported.
        this._recoverByPages(reply, pending);
        return;
      }
      if (reply.recovered === false && this.position && this.position.epoch !== reply.epoch && reply.offset > 0) {
        // Recovery refused in a new epoch: what the old epoch held after the
        // position is gone (reported from offset 0 of the new one), but the
        // new epoch's messages up to the reply's offset are in the history:
        // read them, page by page, before what arrived meanwhile.
        this._moveTo(0, reply.epoch);
        this.unrecovered++;
        this.emit('unrecovered', { offset: 0, epoch: reply.epoch });
        this._fillGap(reply.epoch, reply.offset + 1, pending).then((lost) => {
          if (lost !== null) this.emit('subscribed', reply);
        });
        return;
      }
      if (reply.recovered === true) {
        this.recoveries++;
        for (const p of reply.publications || []) {
          this._deliver({ type: 'message', channel: this.channel, data: p.data, offset: p.offset, epoch: reply.epoch, recovered: true });
        }
      } else {
        this._moveTo(reply.offset, reply.epoch);
        if (reply.recovered === false) {
          this.unrecovered++;
          this.emit('unrecovered', { offset: reply.offset, epoch: reply.epoch });
        }
      }
    } else if (reply.recovered === false) {
      this.unrecovered++;
      this.emit('unrecovered', null);
    }
    if (first) {
      const owner = { first: true };
      this._pending = pending;
      this._pendingOwner = owner;
      owner.flush = () => {
        if (this._pendingOwner !== owner) return;
        const held = this._pending;
        this._pending = null;
        this._pendingOwner = null;
        if (!this._active) return;
        this._release(held);
        this.emit('subscribed', reply);
      };
      setTimeout(owner.flush, 0);
      return;
    }
    this._release(pending);
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
    this._dialing = false;
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
    if (!this._ws && !this._timer && !this._dialing) this._dial();
    return opened;
  }

  /** Closes the connection for good: no reconnect; pending requests and subscribes fail. */
  close() {
    this._closed = true;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    if (ws) ws.close(1000, 'client closed');
    for (const r of this._queue.splice(0)) this._fail(r, new ConnectionClosedError());
    for (const sub of [...this._subs.values()]) {
      clearTimeout(sub._retryTimer);
      sub._retryTimer = null;
      // A subscribe still waiting for its first reply fails; established
      // subscriptions stay, and resubscribe if connect() is called again.
      if (sub._ready) this._drop(sub, new ConnectionClosedError());
    }
  }

  /** Subscribes to channel; resolves with the Subscription after the first subscribed reply. */
  subscribe(channel) {
    let sub = this._subs.get(channel);
    if (sub) return sub._ready ? sub._ready.promise : Promise.resolve(sub);
    sub = new Subscription(this, channel);
    this._subs.set(channel, sub);
    // An unsubscribe of an earlier subscription still queued (across a
    // reconnect the resubscribes go first) would undo this one: it is dropped.
    for (const r of this._queue) {
      if (r.frame && r.frame.action === 'unsubscribe' && r.frame.channel === channel) r.frame = () => null;
    }
    const ready = {};
    ready.promise = new Promise((resolve, reject) => { ready.resolve = resolve; ready.reject = reject; });
    sub._ready = ready;
    if (this.connected) this._resubscribe(sub);
    return ready.promise;
  }

  /** Publishes data (any JSON value) to a channel the client joined; resolves with the published reply. */
  publish(channel, data) {
    // JSON.stringify leaves these out rather than throwing: the server would answer a missing data.
    if (data === undefined || typeof data === 'function' || typeof data === 'symbol') {
      return Promise.reject(new TypeError(`publish: data of type ${typeof data} has no JSON encoding`));
    }
    return this._request({ action: 'publish', channel, data });
  }

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
    // One dial at a time: connect() while the token is fetched opens no second socket.
    this._dialing = true;
    let url;
    try { url = await this._url(); } catch (err) { this._dialing = false; this.emit('error', err); this._scheduleReconnect(); return; }
    this._dialing = false;
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
      // Resubscribes go first: a publish queued while disconnected needs its
      // channel joined on this connection.
      const queued = this._queue.splice(0);
      for (const sub of this._subs.values()) this._resubscribe(sub);
      this._queue.push(...queued);
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
    // A first subscribe's messages held for its handlers are theirs: delivered now.
    for (const sub of this._subs.values()) sub._pendingOwner?.first && sub._pendingOwner.flush();
    clearInterval(this._pingTimer);
    if (this._inflight) { this._fail(this._inflight, new ConnectionClosedError()); this._inflight = null; }
    // Resubscribes and gap reads belong to the closed connection; the next one sends its own.
    this._queue = this._queue.filter((r) => {
      if (!r.perConnection) return true;
      this._fail(r, new ConnectionClosedError());
      return false;
    });
    for (const sub of this._subs.values()) { sub._pending = null; sub._pendingOwner = null; sub._members = null; }
    this.emit('disconnected', { code: ev.code, reason: ev.reason });
    this._scheduleReconnect();
  }

  // _restart closes the connection so that the next one resubscribes (with
  // recovery) from a clean state. A dead link can take the WebSocket's own
  // closing handshake (30 s in the ws package) to report its close: the
  // client goes on at once, and the old socket's late events are ignored.
  _restart(reason) {
    const ws = this._ws;
    if (!ws) return;
    ws.close(4000, reason);
    if (ws === this._ws) this._onClose({ code: 4000, reason });
  }

  // _backoff is the delay before retry number attempt (from 0): the ceiling
  // doubles per attempt; equal jitter, half fixed and half random, so a crowd
  // does not come back at once.
  _backoff(attempt) {
    const { minReconnectDelay: min, maxReconnectDelay: max } = this.options;
    const ceiling = Math.min(max, min * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  _scheduleReconnect() {
    if (this._closed) return;
    this._timer = setTimeout(() => this._dial(), this._backoff(this._attempt++));
  }

  _startPing() {
    clearInterval(this._pingTimer);
    if (!this.options.pingInterval) return;
    this._pingTimer = setInterval(() => {
      // Ahead of queued requests: it tests the link, so it must not wait
      // behind a burst of publishes and expire unsent.
      this._request({ action: 'ping' }, { front: true }).catch(() => this._restart('ping failed'));
    }, this.options.pingInterval);
    this._pingTimer.unref?.();
  }

  _resubscribe(sub) {
    clearTimeout(sub._retryTimer);
    sub._retryTimer = null;
    const frame = { action: 'subscribe', channel: sub.channel };
    if (sub.position) frame.since = sub.position;
    if (sub._pendingOwner !== 'subscribe') {
      // Hold messages and collect member events until the reply (a retry on
      // the same connection goes on holding).
      sub._pending = [];
      sub._pendingOwner = 'subscribe';
      sub._members = [];
    }
    const attempt = {};
    sub._attempt = attempt;
    this._request(frame, { perConnection: true }).then((reply) => {
      if (!sub._active || sub._attempt !== attempt) return;
      sub._retries = 0;
      const ready = sub._ready;
      sub._ready = null;
      sub._subscribed(reply, !!ready);
      if (ready) ready.resolve(sub);
    }, (err) => {
      if (!sub._active || sub._attempt !== attempt) return;
      if (err instanceof ConnectionClosedError) return; // the next connection resubscribes
      if (err instanceof ProtocolError && err.code === 'bad_request' && /not registered/.test(err.message)) {
        // The server removed this connection while its socket stayed open:
        // a new connection registers again and resubscribes.
        this._restart('connection not registered');
        return;
      }
      if (err instanceof ProtocolError && REFUSALS.has(err.code)) { this._drop(sub, err); return; }
      // Transient (no reply in time, internal_error, a gateway error): keep
      // the subscription and try again after a backoff; a new connection
      // resubscribes at once.
      sub._retryTimer = setTimeout(() => {
        sub._retryTimer = null;
        if (sub._active && this.connected) this._resubscribe(sub);
      }, this._backoff(sub._retries++));
    });
  }

  // _drop ends a subscription the server refused (or a first subscribe cut
  // short by close()): its subscribe() rejects, or the client emits error.
  _drop(sub, err) {
    this._subs.delete(sub.channel);
    sub._active = false;
    sub._pending = null;
    sub._pendingOwner = null;
    sub._members = null;
    clearTimeout(sub._retryTimer);
    if (err instanceof ProtocolError) err.channel = sub.channel;
    if (sub._ready) { sub._ready.reject(err); sub._ready = null; } else this.emit('error', err);
  }

  // _request queues a request. frame may be a function that builds the frame
  // when it is sent (null: nothing to send, resolves with null). A
  // perConnection request fails when its connection closes instead of
  // waiting for the next one.
  // A request waits up to requestTimeout to be sent and, once sent, up to
  // requestTimeout for its reply: time spent queued behind other requests
  // never counts against the reply, so a burst of requests cannot make a
  // healthy connection look dead. front puts it ahead of the queued ones
  // (keep-alive pings, gap reads).
  _request(frame, { perConnection = false, action = frame.action, front = false } = {}) {
    return new Promise((resolve, reject) => {
      const r = { frame, resolve, reject, perConnection };
      r.expire = () => {
        if (this._inflight === r) {
          // A reply that never came leaves the connection out of step: start over.
          this._inflight = null;
          this._restart('request timed out');
        } else {
          this._queue = this._queue.filter((q) => q !== r);
        }
        reject(new Error(`no reply to ${action} within ${this.options.requestTimeout} ms`));
      };
      r.timer = setTimeout(r.expire, this.options.requestTimeout);
      if (front) this._queue.unshift(r); else this._queue.push(r);
      this._pump();
    });
  }

  _fail(r, err) { clearTimeout(r.timer); r.reject(err); }

  // _pump sends the next request when none is in flight: v1 replies carry no
  // request id, so one request at a time keeps every reply matched.
  _pump() {
    while (!this._inflight && this.connected && this._queue.length > 0) {
      const r = this._queue.shift();
      let text;
      try {
        r.sent = typeof r.frame === 'function' ? r.frame() : r.frame;
        if (r.sent) text = JSON.stringify(r.sent);
      } catch (err) {
        // Data JSON cannot encode (a BigInt, a cycle): this request fails,
        // the others go on.
        this._fail(r, err);
        continue;
      }
      if (!r.sent) { clearTimeout(r.timer); r.resolve(null); continue; }
      this._inflight = r;
      clearTimeout(r.timer);
      r.timer = setTimeout(r.expire, this.options.requestTimeout);
      this._ws.send(text);
    }
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
    if (r && isGatewayError(frame)) frame = { type: 'error', code: 'gateway_error', message: frame.message };
    if (!r || !frame || !REPLY_TYPES.has(frame.type)) { this.emit('message', frame); return; }
    this._inflight = null;
    clearTimeout(r.timer);
    if (frame.type === 'error') r.reject(new ProtocolError(frame.code, frame.message));
    else {
      // Before anything else arrives: the subscription passes over its own message.
      if (frame.type === 'published' && r.sent.action === 'publish') this._subs.get(r.sent.channel)?._published(frame);
      r.resolve(frame);
    }
    this._pump();
  }
}

// isGatewayError tells API Gateway's own answer to a route whose integration
// failed ({"message":"Internal server error","connectionId","requestId"}, no
// type) from a frame of the protocol.
function isGatewayError(frame) {
  return !!frame && typeof frame === 'object' && frame.type === undefined && typeof frame.message === 'string' &&
    typeof frame.connectionId === 'string' && typeof frame.requestId === 'string';
}
