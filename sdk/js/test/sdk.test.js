// The JS SDK against a real `questline serve` (SQLite in a temporary directory, the demo app).
// QUESTLINE_PYTHON names the Python with the engine installed (default: the checkout's .venv).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

import { MemoryStorage, Questline, QuestlineProblem, clickIdFrom } from "../src/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const PYTHON = process.env.QUESTLINE_PYTHON || join(ROOT, ".venv/bin/python");

let server;
let base;
let demo;

function freePort() {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

before(async () => {
  const cwd = mkdtempSync(join(tmpdir(), "questline-js-"));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("QUESTLINE_")));
  env.QUESTLINE_DATABASE_URL = `sqlite+aiosqlite:///${join(cwd, "questline.db")}`;
  server = spawn(PYTHON, ["-m", "questline", "serve", "--host", "127.0.0.1", "--port", String(port)],
    { cwd, env, stdio: "ignore" });
  base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok && existsSync(join(cwd, "questline-demo.json"))) break;
    } catch { /* not up yet */ }
    assert.ok(Date.now() < deadline, "questline serve did not come up");
    assert.equal(server.exitCode, null, "questline serve exited");
    await new Promise((r) => setTimeout(r, 250));
  }
  demo = JSON.parse(readFileSync(join(cwd, "questline-demo.json"), "utf8"));
});

after(() => { if (server) server.kill("SIGTERM"); });

const asServer = () => new Questline({ baseUrl: base, token: demo.server_key });

async function mintToken(playerId) {
  const reply = await asServer().request("POST", `/v1/players/${playerId}/tokens`, { body: { ttl_seconds: 900 } });
  return reply.token;
}

async function eventsOf(playerId) {
  const page = await asServer().request("GET", `/v1/players/${playerId}/events`, { query: { limit: 200 } });
  return page.items.map((event) => event.event_id).sort();
}

test("events queued offline survive a restart and are counted once when sent again", async () => {
  const storage = new MemoryStorage();
  let online = false;
  const flaky = (...args) => (online ? fetch(...args) : Promise.reject(new TypeError("fetch failed")));
  const token = await mintToken("js-ann");
  const offline = new Questline({ baseUrl: base, token, playerId: "js-ann", storage, fetch: flaky, attempts: 1 });
  const ids = [offline.track("water.logged", { ml: 250 }), offline.track("meal.logged"),
    offline.track("water.logged", { ml: 500 })];
  const first = await offline.flush();
  assert.equal(first.offline, true);
  assert.equal(first.pending, 3);

  // A new page load: the same storage holds the same events, with the ids made when they were tracked.
  online = true;
  const reloaded = new Questline({ baseUrl: base, token, playerId: "js-ann", storage, fetch: flaky });
  assert.deepEqual(reloaded.queued().map((e) => e.id), ids);
  const snapshot = storage.getItem(reloaded.queueKey);
  const sent = await reloaded.flush();
  assert.deepEqual(sent.accepted.sort(), [...ids].sort());
  assert.equal(sent.pending, 0);

  // A crash between sending and forgetting: the same events are sent again and are duplicates.
  storage.setItem(reloaded.queueKey, snapshot);
  const again = await reloaded.flush();
  assert.deepEqual(again.duplicates.sort(), [...ids].sort());
  assert.deepEqual(again.accepted, []);
  assert.deepEqual(await eventsOf("js-ann"), [...ids].sort());
});

test("events the engine refuses leave the queue and reach onRejected", async () => {
  const storage = new MemoryStorage();
  const refused = [];
  const client = new Questline({ baseUrl: base, token: await mintToken("js-bo"), playerId: "js-bo", storage,
    onRejected: (items) => refused.push(...items) });
  const good = client.track("session.started");
  const bad = client.track("xp.granted.by.me", { amount: 1_000_000 }); // not a client event type
  const result = await client.flush();
  assert.deepEqual(result.accepted, [good]);
  assert.equal(result.rejected.length, 1);
  assert.equal(refused[0].event.id, bad);
  assert.ok(refused[0].code);
  assert.equal(client.queued().length, 0);
});

test("a revoked player token is refreshed once through getToken, then the call succeeds", async () => {
  let minted = 0;
  const getToken = async () => { minted += 1; return mintToken("js-cy"); };
  const client = new Questline({ baseUrl: base, getToken, playerId: "js-cy", storage: new MemoryStorage() });
  const before = await client.balances();
  assert.equal(minted, 1);
  assert.ok(before.balances !== undefined || typeof before === "object");
  await asServer().request("DELETE", "/v1/players/js-cy/tokens");
  const profile = await client.profile();
  assert.equal(minted, 2);
  assert.equal(profile.player.player_id, "js-cy");
});

test("problems are thrown with their status and code, and a player reads only their own data", async () => {
  const client = new Questline({ baseUrl: base, token: await mintToken("js-dee"), playerId: "js-dee",
    storage: new MemoryStorage() });
  await assert.rejects(client.profile("someone-else"), (error) => {
    assert.ok(error instanceof QuestlineProblem);
    assert.equal(error.status, 404);
    assert.equal(error.code, "not_found");
    assert.ok(error.requestId);
    return true;
  });
  const server = asServer();
  await assert.rejects(server.request("POST", "/v1/ledger/spends",
    { body: { player_id: "js-dee", currency: "points", amount: 5 } }), (error) => {
    assert.equal(error.code, "insufficient_funds");
    assert.equal(error.body.shortfall, 5);
    return true;
  });
});

test("reads: the catalog, a board and a player's rank", async () => {
  const server = asServer();
  await server.request("PUT", "/v1/definitions/leaderboard/js-water", {
    // A type of its own: the offline test's water.logged events may still be in the worker's backlog
    // when this board is defined, and would put js-ann on it.
    body: { name: "Water", event_type: "js.water.logged", field: "data.ml", operator: "sum" },
  });
  await server.request("POST", "/v1/events", { query: { wait: true }, body: { events: [
    { id: "jsw-1", player_id: "js-eve", type: "js.water.logged", data: { ml: 900 } },
    { id: "jsw-2", player_id: "js-fay", type: "js.water.logged", data: { ml: 400 } },
  ] } });
  const board = await server.leaderboard("js-water", { limit: 10 });
  assert.deepEqual(board.items.map((row) => [row.rank, row.player_id, row.score]),
    [[1, "js-eve", 900], [2, "js-fay", 400]]);
  const fay = await server.rank("js-water", "js-fay", { around: 1 });
  assert.deepEqual(fay.items.map((row) => [row.rank, row.player_id]), [[1, "js-eve"], [2, "js-fay"]]);
  const catalog = await new Questline({ baseUrl: base, token: demo.client_key }).catalog();
  assert.ok(catalog.achievements.length >= 25); // the demo game's achievements, secrets left out
});

test("live channels: a player's messages arrive in order and none is lost across a reconnect", async () => {
  const token = await mintToken("js-gil");
  const client = new Questline({ baseUrl: base, token, playerId: "js-gil", storage: new MemoryStorage() });
  const live = client.live();
  const offsets = [];
  const states = [];
  live.onState = (state) => states.push(state);
  live.subscribe("player:js-gil", (message, frame) => offsets.push(frame.offset));
  const waitFor = async (check, what) => {
    const deadline = Date.now() + 30_000;
    while (!check()) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const send = (id) => asServer().request("POST", "/v1/events", { query: { wait: true },
    body: { id, player_id: "js-gil", type: "workout.completed", data: { minutes: 30 } } });
  await waitFor(() => states.includes("open"), "the socket to open");
  await new Promise((r) => setTimeout(r, 300)); // the subscribe frame is on its way
  await send("gil-1");
  await waitFor(() => offsets.length >= 1, "the first message");
  const beforeDrop = offsets.length;

  live.socket.close(); // the network drops; the connection comes back by itself
  await send("gil-2");
  await send("gil-3");
  await waitFor(() => states.filter((s) => s === "open").length >= 2, "the reconnect");
  await waitFor(() => offsets.length >= beforeDrop + 2, "the missed messages");
  await new Promise((r) => setTimeout(r, 1000));
  live.close();
  for (let i = 1; i < offsets.length; i += 1) assert.equal(offsets[i], offsets[i - 1] + 1, `gap at ${i}: ${offsets}`);
  assert.ok(offsets.length > beforeDrop);
});

test("a join passes on the click id of the community's referral link", async () => {
  const server = asServer();
  await server.request("POST", "/v1/communities", { body: {
    name: "JS Guild", slug: "js-guild", redirect_url: "https://play.example.com/join" } });
  const lead = await server.request("POST", "/v1/communities/js-guild/members", { body: { player_id: "js-lead" } });
  const followed = await fetch(`${base}${lead.referral_link}`, { redirect: "manual",
    headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36" } });
  assert.equal(followed.status, 302);
  const landing = followed.headers.get("location");
  assert.ok(landing.startsWith("https://play.example.com/join?ql_click="));
  const client = new Questline({ baseUrl: base, token: await mintToken("js-dee"), playerId: "js-dee",
    storage: new MemoryStorage() });
  const joined = await client.joinCommunity("js-guild", { clickId: clickIdFrom(landing) });
  assert.equal(joined.click, "attributed");
  assert.equal(joined.referred_by, "js-lead");
  assert.equal(clickIdFrom("https://play.example.com/join"), null);
});
