// Types of @wsforge/realtime-client (index.js). See README.md.

/** A stream position on a history channel. */
export interface StreamPosition {
  /** Offset of the last message (0 before the first). */
  offset: number;
  /** The stream's epoch; a new epoch means a new stream. */
  epoch: string;
}

/** Anything with the browser WebSocket API (the `ws` package in Node 20). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // The handlers the client sets take the socket's own event types (the DOM's
  // MessageEvent and CloseEvent, the ws package's), so they are typed loosely:
  // the client reads ev.data of a message and ev.code, ev.reason of a close.
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** The JWT, or a function returning it (called before every connect, so it can refresh). */
  token?: string | (() => string | Promise<string>);
  /** Query parameter that carries the token (default "token", the module's default identity source). */
  tokenParam?: string;
  /** WebSocket subprotocols to offer. */
  protocols?: string | string[];
  /** WebSocket constructor; default globalThis.WebSocket (browsers, Node 22+). */
  WebSocket?: WebSocketConstructor;
  /** First reconnect delay ceiling in ms (default 500); doubles per failed attempt. */
  minReconnectDelay?: number;
  /** Largest reconnect delay ceiling in ms (default 30000). */
  maxReconnectDelay?: number;
  /** Keep-alive ping period in ms (default 240000, well inside API Gateway's 10-minute idle timeout); 0 disables. */
  pingInterval?: number;
  /** How long a request waits to be sent (behind other requests or while disconnected) and, once sent, for its reply (default 10000 ms each). */
  requestTimeout?: number;
}

/** A message frame as delivered ({type:"message", channel, data, offset?, epoch?}). */
export interface MessageFrame {
  type: 'message';
  channel: string;
  data: unknown;
  offset?: number;
  epoch?: string;
  /** True when the message came from the history (a recovery or a filled gap), not live. */
  recovered?: boolean;
}

/** A history reply, or a subscribed reply on a history channel. */
export interface StreamReply extends StreamPosition {
  type: 'history' | 'subscribed';
  channel: string;
  recovered?: boolean;
  publications?: { offset: number; data: unknown }[];
  members?: { userId: string }[];
}

/**
 * A subscribed reply: offset and epoch on history channels only, members on
 * presence channels, recovered when the subscribe sent since.
 */
export interface SubscribedReply extends Partial<StreamPosition> {
  type: 'subscribed';
  channel: string;
  recovered?: boolean;
  publications?: { offset: number; data: unknown }[];
  members?: { userId: string }[];
}

/** The published reply; offset and epoch on history channels. */
export interface PublishedReply {
  type: 'published';
  channel: string;
  offset?: number;
  epoch?: string;
}

/** An error reply, as a rejection. */
export class ProtocolError extends Error {
  constructor(code: string, message: string);
  /**
   * The protocol error code (forbidden, not_subscribed, too_large, ...); `gateway_error` for API
   * Gateway's own answer to a route whose integration failed (`{"message":"Internal server error",...}`).
   */
  readonly code: string;
  /** On the client's `error` event for a subscription the server refused: its channel. */
  channel?: string;
}

/** The request's connection closed before its reply. */
export class ConnectionClosedError extends Error {
  constructor();
}

/** A subscription; it survives reconnects and resubscribes with recovery. */
export class Subscription {
  /** Made by Client.subscribe(), not by hand. */
  private constructor();
  readonly channel: string;
  /**
   * Position of the last message delivered, passed over (this client's own publish) or reported
   * missing by `unrecovered`; null on channels without history.
   */
  readonly position: StreamPosition | null;
  /** A presence channel's users. */
  readonly members: Set<string>;
  /** Resubscribes that recovered every missed message (in their reply, or read with history). */
  readonly recoveries: number;
  /**
   * Times messages could not be recovered (messages may be missing: reload state): resubscribes
   * answered recovered:false in a new epoch, and gaps (after a resubscribe, or in live delivery)
   * reaching back past what the history keeps.
   */
  readonly unrecovered: number;
  /** Messages that arrived twice and were dropped by offset. */
  readonly duplicates: number;
  on(event: 'message', fn: (data: unknown, frame: MessageFrame) => void): () => void;
  on(event: 'member_joined' | 'member_left', fn: (userId: string) => void): () => void;
  /**
   * Messages up to position (of its epoch) may be missing; delivery goes on after it. null when a
   * channel without history was resubscribed with since.
   */
  on(event: 'unrecovered', fn: (position: StreamPosition | null) => void): () => void;
  /** After each (re)subscribe reply, once its recovered messages were delivered. */
  on(event: 'subscribed', fn: (reply: SubscribedReply) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;
  unsubscribe(): Promise<void>;
}

export class Client {
  constructor(url: string, options?: ClientOptions);
  /** True while the socket is open. */
  readonly connected: boolean;
  /** Connections opened so far. */
  readonly connections: number;
  /** Connects (and reconnects until close()); resolves once open. */
  connect(): Promise<void>;
  /** Closes for good; pending requests, and subscribes not yet answered, reject with ConnectionClosedError. */
  close(): void;
  /**
   * Resolves after the first subscribed reply; transient failures (no reply in time, internal_error,
   * gateway_error) are retried. Rejects with ProtocolError on a refusal (forbidden, bad_request,
   * too_many_channels, too_large, unknown_action), or with ConnectionClosedError on close().
   * The messages that overtook the first reply, and its 'subscribed' event, come just after it
   * resolves, so handlers attached right after `await` get them.
   */
  subscribe(channel: string): Promise<Subscription>;
  publish(channel: string, data: unknown): Promise<PublishedReply>;
  whoami(): Promise<{ connectionId: string; userId: string | null }>;
  history(channel: string, options?: { since?: StreamPosition; limit?: number }): Promise<StreamReply>;
  ping(): Promise<{ type: 'pong' }>;
  on(event: 'connected', fn: () => void): () => void;
  on(event: 'disconnected', fn: (ev: { code: number; reason: string }) => void): () => void;
  /** Token function failures, and subscriptions the server refused on a resubscribe (err.channel). */
  on(event: 'error', fn: (err: Error) => void): () => void;
  /** Frames that belong to no subscription or request (e.g. server API sends to the connection). */
  on(event: 'message', fn: (frame: unknown) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;
}
