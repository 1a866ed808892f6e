// The Questline SDK for browsers and Node 20+: events with an offline queue, player-token refresh,
// the read APIs, and live channels with offset recovery. No dependencies: fetch, WebSocket,
// crypto.randomUUID and (in browsers) localStorage are the platform's own.

const RETRIED = new Set([429, 503]);
const DONE_WITH = (result) => new Set([...result.accepted, ...result.duplicates]);

/** An answer of 400 or more, as RFC 9457 problem+json: `status`, the stable `code`, `detail`, `requestId`. */
export class QuestlineProblem extends Error {
  constructor(status, body, headers) {
    const problem = body && typeof body === "object" ? body : {};
    super(`${status} ${problem.code || "http_error"}: ${problem.detail || problem.title || ""}`);
    this.name = "QuestlineProblem";
    this.status = status;
    this.code = problem.code || "http_error";
    this.detail = problem.detail || "";
    this.requestId = problem.request_id || (headers && headers.get("x-request-id")) || null;
    this.body = problem;
  }
}

/** A Storage (getItem/setItem/removeItem) held in memory: for Node, tests, or private windows. */
export class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(key) { return this.items.has(key) ? this.items.get(key) : null; }
  setItem(key, value) { this.items.set(key, String(value)); }
  removeItem(key) { this.items.delete(key); }
}

function defaultStorage() {
  try {
    if (typeof globalThis.localStorage !== "undefined") return globalThis.localStorage;
  } catch { /* storage disabled: fall through */ }
  return new MemoryStorage();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function retryDelaySeconds(response, attempt) {
  const given = response ? Number.parseFloat(response.headers.get("retry-after") || "") : Number.NaN;
  return Number.isFinite(given) && given >= 0 ? given : 0.25 * 2 ** attempt;
}

export class Questline {
  /**
   * @param {object} options see index.d.ts
   */
  constructor(options) {
    if (!options || !options.baseUrl) throw new TypeError("baseUrl is required");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token || null;
    this.getToken = options.getToken || null;
    this.playerId = options.playerId || null;
    this.app = options.app || null;
    this.storage = options.storage || defaultStorage();
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this.queueKey = options.queueKey || `questline:queue:${this.baseUrl}`;
    this.maxQueue = options.maxQueue ?? 1000;
    this.batchSize = Math.min(options.batchSize ?? 100, 1000);
    this.attempts = Math.max(1, options.attempts ?? 4);
    this.maxWait = options.maxWait ?? 30;
    this.onRejected = options.onRejected || null;
    this._flushing = null;
    this._timer = null;
    this._online = null;
  }

  // -- the transport -------------------------------------------------------------------------

  async _authorization(refresh) {
    if (this.getToken && (refresh || !this.token)) this.token = await this.getToken();
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /**
   * One API call. A POST gets an Idempotency-Key (kept through retries) unless one is given;
   * 429/503 are retried after Retry-After; a 401 with a refreshable token refreshes it once.
   * Answers of 400 or more throw a QuestlineProblem. Resolves to the parsed JSON (or null).
   */
  async request(method, path, { body, query, idempotencyKey, headers: extra } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers = { Accept: "application/json", ...(extra || {}) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.app) headers["X-Questline-App"] = this.app;
    if (method === "POST") headers["Idempotency-Key"] = idempotencyKey || globalThis.crypto.randomUUID();
    let refreshed = false;
    for (let attempt = 0; ; attempt += 1) {
      const last = attempt >= this.attempts - 1;
      const auth = await this._authorization(false);
      let response;
      try {
        response = await this.fetch(url, {
          method, headers: { ...headers, ...auth }, body: body === undefined ? undefined : JSON.stringify(body),
          redirect: "manual",
        });
      } catch (error) {
        if (last || retryDelaySeconds(null, attempt) > this.maxWait) throw error;
        await sleep(retryDelaySeconds(null, attempt) * 1000);
        continue;
      }
      if (response.status === 401 && this.getToken && !refreshed) {
        refreshed = true;
        await response.text();
        await this._authorization(true);
        attempt -= 1; // a refresh is not a retry
        continue;
      }
      if (RETRIED.has(response.status) && !last && retryDelaySeconds(response, attempt) <= this.maxWait) {
        await response.text();
        await sleep(retryDelaySeconds(response, attempt) * 1000);
        continue;
      }
      const text = await response.text();
      const parsed = text ? JSON.parse(text) : null;
      if (response.status >= 400) throw new QuestlineProblem(response.status, parsed, response.headers);
      return parsed;
    }
  }

  // -- events and the offline queue -----------------------------------------------------------

  /** The events waiting to be sent, oldest first. */
  queued() {
    try {
      const stored = JSON.parse(this.storage.getItem(this.queueKey) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch {
      return [];
    }
  }

  _save(queue) {
    this.storage.setItem(this.queueKey, JSON.stringify(queue));
  }

  /**
   * Queue an event (persisted at once) and return its id. The id is made here, once: however
   * often the queue is flushed, crashes or goes offline, the engine counts the event once.
   */
  track(type, data = {}, { playerId, id, timestamp } = {}) {
    const player = playerId || this.playerId;
    if (!player) throw new TypeError("track needs a playerId (or one given to the constructor)");
    const event = {
      id: id || globalThis.crypto.randomUUID(), player_id: player, type, data,
      timestamp: timestamp || new Date().toISOString(),
    };
    const queue = this.queued();
    queue.push(event);
    this._save(queue.slice(-this.maxQueue)); // the oldest go first when the queue overflows
    return event.id;
  }

  /**
   * Send what is queued, in batches, oldest first. Accepted and duplicate events leave the
   * queue; rejected ones leave it too and are handed to `onRejected`. Offline (the network
   * fails), everything stays queued and `offline: true` is returned. One flush runs at a time.
   */
  flush() {
    if (!this._flushing) {
      this._flushing = this._flush().finally(() => { this._flushing = null; });
    }
    return this._flushing;
  }

  async _flush() {
    const summary = { accepted: [], duplicates: [], rejected: [], offline: false };
    for (;;) {
      const batch = this.queued().slice(0, this.batchSize);
      if (batch.length === 0) break;
      let result;
      try {
        // Events carry their own ids: a batch sent twice is counted once whatever the request key.
        result = await this.request("POST", "/v1/events", { body: { events: batch } });
      } catch (error) {
        if (error instanceof QuestlineProblem) throw error;
        summary.offline = true;
        break;
      }
      const rejected = result.rejected.map((r) => ({ ...r, event: batch[r.index] }));
      const sent = new Set([...DONE_WITH(result), ...rejected.map((r) => r.event && r.event.id)]);
      this._save(this.queued().filter((event) => !sent.has(event.id)));
      summary.accepted.push(...result.accepted);
      summary.duplicates.push(...result.duplicates);
      summary.rejected.push(...rejected);
      if (rejected.length && this.onRejected) this.onRejected(rejected);
    }
    return { ...summary, pending: this.queued().length };
  }

  /** Flush every `intervalMs`, and at once when a browser comes back online. */
  startAutoFlush(intervalMs = 5000) {
    this.stopAutoFlush();
    const tick = () => { this.flush().catch(() => {}); };
    this._timer = setInterval(tick, intervalMs);
    if (typeof globalThis.addEventListener === "function") {
      this._online = tick;
      globalThis.addEventListener("online", tick);
    }
  }

  stopAutoFlush() {
    if (this._timer) clearInterval(this._timer);
    if (this._online && typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._online);
    }
    this._timer = null;
    this._online = null;
  }

  // -- live channels ------------------------------------------------------------------------

  /**
   * Follow channels over the engine's WebSocket (`/v1/realtime`), reconnecting with backoff and
   * resuming each channel from the last offset seen, so nothing is missed across a disconnect;
   * when the engine cannot replay that far it sends `resync` (re-read the state over HTTP).
   * Returns a LiveConnection: `subscribe(channel, onMessage, {onResync})`, `close()`.
   */
  live(options = {}) { return new LiveConnection(this, options); }

  // -- reads ----------------------------------------------------------------------------------

  _player(playerId) {
    const player = playerId || this.playerId;
    if (!player) throw new TypeError("a playerId is required");
    return encodeURIComponent(player);
  }

  profile(playerId) { return this.request("GET", `/v1/players/${this._player(playerId)}`); }
  balances(playerId) { return this.request("GET", `/v1/players/${this._player(playerId)}/balances`); }
  transactions(playerId, query) {
    return this.request("GET", `/v1/players/${this._player(playerId)}/transactions`, { query });
  }
  achievements(playerId) { return this.request("GET", `/v1/players/${this._player(playerId)}/achievements`); }
  challenges(playerId, query) {
    return this.request("GET", `/v1/players/${this._player(playerId)}/challenges`, { query });
  }
  streaks(playerId) { return this.request("GET", `/v1/players/${this._player(playerId)}/streaks`); }
  battlePass(playerId) { return this.request("GET", `/v1/players/${this._player(playerId)}/battle-pass`); }
  inventory(playerId) { return this.request("GET", `/v1/players/${this._player(playerId)}/inventory`); }
  catalog() { return this.request("GET", "/v1/achievements"); }
  leaderboard(key, query) { return this.request("GET", `/v1/leaderboards/${encodeURIComponent(key)}`, { query }); }
  rank(key, playerId, { around = 5, ...query } = {}) {
    return this.request("GET", `/v1/leaderboards/${encodeURIComponent(key)}/players/${this._player(playerId)}`,
      { query: { around, ...query } });
  }

  // -- communities ----------------------------------------------------------------------------

  /**
   * Join a community as the token's player. The click id its referral link added to the page's
   * URL (``ql_click``) is passed on, so the join counts for the member whose link it was.
   */
  joinCommunity(community, { metadata = {}, clickId = clickIdFrom() } = {}) {
    const body = clickId ? { metadata, click_id: clickId } : { metadata };
    return this.request("POST", `/v1/communities/${encodeURIComponent(community)}/members`, { body });
  }
}

/** The ``ql_click`` parameter of a URL (default: the page's), or null. */
export function clickIdFrom(url = globalThis.location ? globalThis.location.href : undefined) {
  if (!url) return null;
  try { return new URL(url).searchParams.get("ql_click"); } catch { return null; }
}

export class LiveConnection {
  constructor(client, { WebSocket: Socket, maxBackoffMs = 15000, onState } = {}) {
    this.client = client;
    this.Socket = Socket || globalThis.WebSocket;
    if (!this.Socket) throw new TypeError("no WebSocket here: pass {WebSocket} (Node 20: --experimental-websocket)");
    this.maxBackoffMs = maxBackoffMs;
    this.onState = onState || (() => {});
    this.channels = new Map(); // channel -> {onMessage, onResync, offset, epoch}
    this.closed = false;
    this.attempt = 0;
    this.socket = null;
    this._connect();
  }

  subscribe(channel, onMessage, { onResync, offset, epoch } = {}) {
    this.channels.set(channel, { onMessage, onResync: onResync || null, offset: offset ?? null, epoch: epoch ?? null });
    this._send(this._subscribeFrame(channel));
    return () => this.unsubscribe(channel);
  }

  unsubscribe(channel) {
    this.channels.delete(channel);
    this._send({ type: "unsubscribe", channel });
  }

  /** The last offset and epoch seen per channel: keep them to resume after a reload. */
  positions() {
    return Object.fromEntries([...this.channels].map(([name, c]) => [name, { offset: c.offset, epoch: c.epoch }]));
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }

  _subscribeFrame(channel) {
    const state = this.channels.get(channel);
    const frame = { type: "subscribe", channel };
    if (state && state.offset !== null) frame.offset = state.offset;
    if (state && state.epoch !== null) frame.epoch = state.epoch;
    return frame;
  }

  _send(frame) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  async _connect() {
    if (this.closed) return;
    const token = this.client.getToken && !this.client.token ? await this.client.getToken() : this.client.token;
    const url = new URL(this.client.baseUrl.replace(/^http/, "ws") + "/v1/realtime");
    if (token) url.searchParams.set("token", token);
    if (this.client.app) url.searchParams.set("app", this.client.app);
    const socket = new this.Socket(url.toString());
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.onState("open");
      for (const channel of this.channels.keys()) this._send(this._subscribeFrame(channel));
    };
    socket.onmessage = (event) => this._frame(event.data);
    socket.onclose = () => {
      this.onState("closed");
      if (this.closed) return;
      const delay = Math.min(this.maxBackoffMs, 250 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this._connect(), delay);
    };
    socket.onerror = () => {};
  }

  _frame(raw) {
    let frame;
    try { frame = JSON.parse(raw); } catch { return; }
    if (frame.type === "ping") { this._send({ type: "pong" }); return; }
    const state = this.channels.get(frame.channel);
    if (!state) return;
    if (frame.type === "subscribed" || frame.type === "resync") {
      if (frame.epoch !== undefined) state.epoch = frame.epoch;
      if (frame.type === "resync") {
        state.offset = frame.offset ?? null;
        if (state.onResync) state.onResync(frame);
      } else if (state.offset === null) {
        state.offset = frame.offset ?? null;
      }
      return;
    }
    if (frame.type === "message") {
      if (state.offset !== null && frame.offset <= state.offset && frame.epoch === state.epoch) return; // seen
      state.offset = frame.offset;
      state.epoch = frame.epoch;
      state.onMessage(frame.data, frame);
    }
  }
}
