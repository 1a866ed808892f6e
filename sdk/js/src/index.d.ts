/** A Storage as browsers have it (localStorage), where the offline queue is kept. */
export interface QueueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class MemoryStorage implements QueueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** An answer of 400 or more (RFC 9457 problem+json). */
export class QuestlineProblem extends Error {
  readonly status: number;
  /** The engine's stable problem code, e.g. "insufficient_funds". */
  readonly code: string;
  readonly detail: string;
  readonly requestId: string | null;
  readonly body: Record<string, unknown>;
}

export interface QuestlineOptions {
  /** The engine's address, e.g. "https://questline.example.com". */
  baseUrl: string;
  /** A player token (or, on a server, a key). */
  token?: string;
  /** Called for a fresh player token when there is none or the engine answers 401. */
  getToken?: () => Promise<string> | string;
  /** The player events and reads are for when a call does not name one. */
  playerId?: string;
  /** For an admin's token: the app to act in (X-Questline-App). */
  app?: string;
  /** Where queued events are kept; localStorage in browsers, memory elsewhere. */
  storage?: QueueStorage;
  fetch?: typeof fetch;
  queueKey?: string;
  /** The most events kept while offline; the oldest are dropped beyond it (default 1000). */
  maxQueue?: number;
  /** Events per request when flushing (default 100, at most 1000). */
  batchSize?: number;
  /** Attempts per call for 429, 503 and network failures (default 4). */
  attempts?: number;
  /** The longest Retry-After waited for, in seconds (default 30). */
  maxWait?: number;
  onRejected?: (rejected: RejectedEvent[]) => void;
}

export interface QueuedEvent {
  id: string;
  player_id: string;
  type: string;
  data: Record<string, unknown>;
  timestamp: string;
}

export interface RejectedEvent {
  index: number;
  id: string | null;
  code: string;
  reason: string;
  event?: QueuedEvent;
}

export interface FlushResult {
  accepted: string[];
  duplicates: string[];
  rejected: RejectedEvent[];
  /** True when the network failed: what was queued is still queued. */
  offline: boolean;
  /** Events still queued. */
  pending: number;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

export type Json = any;

export class Questline {
  constructor(options: QuestlineOptions);
  readonly baseUrl: string;
  token: string | null;
  request(method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE", path: string, options?: RequestOptions): Promise<Json>;
  track(type: string, data?: Record<string, unknown>,
        options?: { playerId?: string; id?: string; timestamp?: string }): string;
  queued(): QueuedEvent[];
  flush(): Promise<FlushResult>;
  startAutoFlush(intervalMs?: number): void;
  stopAutoFlush(): void;
  live(options?: LiveOptions): LiveConnection;
  profile(playerId?: string): Promise<Json>;
  balances(playerId?: string): Promise<Json>;
  transactions(playerId?: string, query?: RequestOptions["query"]): Promise<Json>;
  achievements(playerId?: string): Promise<Json>;
  challenges(playerId?: string, query?: RequestOptions["query"]): Promise<Json>;
  streaks(playerId?: string): Promise<Json>;
  battlePass(playerId?: string): Promise<Json>;
  inventory(playerId?: string): Promise<Json>;
  catalog(): Promise<Json>;
  leaderboard(key: string, query?: RequestOptions["query"]): Promise<Json>;
  rank(key: string, playerId?: string, query?: { around?: number } & RequestOptions["query"]): Promise<Json>;
  /** Join a community; clickId defaults to the page URL's ql_click (from the community's referral link). */
  joinCommunity(community: string, options?: { metadata?: Record<string, string>; clickId?: string | null }):
    Promise<Json>;
}

/** The ql_click parameter of a URL (default: the page's location), or null. */
export function clickIdFrom(url?: string): string | null;

export interface LiveOptions {
  /** A WebSocket class where the platform has none (Node 20 has one with --experimental-websocket). */
  WebSocket?: typeof WebSocket;
  maxBackoffMs?: number;
  onState?: (state: "open" | "closed") => void;
}

export interface LiveMessage {
  id: string;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

export class LiveConnection {
  subscribe(channel: string, onMessage: (message: LiveMessage, frame: Json) => void,
            options?: { onResync?: (frame: Json) => void; offset?: number; epoch?: string }): () => void;
  unsubscribe(channel: string): void;
  positions(): Record<string, { offset: number | null; epoch: string | null }>;
  close(): void;
}
