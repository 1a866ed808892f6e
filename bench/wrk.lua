-- wrk script for bench/run.py: every request carries events with ids no other request used,
-- or rotates over a list of (path, token) reads. Configured through the environment:
--   QL_MODE     "events" (POST, unique event ids) or "get" (GET the lines of QL_TARGETS)
--   QL_PATH     request path for "events" (default /v1/events)
--   QL_AUTH     the Authorization header's value for "events" (empty: none)
--   QL_BATCH    events per request; 1 sends a bare event object, more send {"events": [...]}
--   QL_KIND     "rules" (match.won / enemy.killed), "demo" (workouts, meals, sessions), "score"
--   QL_PLAYERS  how many distinct players the events spread over
--   QL_RUN      a prefix unique to this run, so ids never repeat across runs
--   QL_TARGETS  for "get": a file of lines "path<TAB>authorization value"
-- At the end one line "QLJSON {...}" carries the counts and latency percentiles (microseconds).

local mode = os.getenv("QL_MODE") or "events"
local path = os.getenv("QL_PATH") or "/v1/events"
local auth = os.getenv("QL_AUTH") or ""
local batch = tonumber(os.getenv("QL_BATCH") or "1")
local kind = os.getenv("QL_KIND") or "rules"
local players = tonumber(os.getenv("QL_PLAYERS") or "1000")
local run = os.getenv("QL_RUN") or "run"

local counter = 0
local thread_id = 0
local targets = {}
local next_target = 1
local workouts = { "run", "strength", "yoga", "cycling" }

local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_id", thread_count)
   table.insert(threads, thread)
end

function init(args)
   wrk.headers["Content-Type"] = "application/json"
   if mode == "get" then
      local file = assert(io.open(os.getenv("QL_TARGETS"), "r"))
      for line in file:lines() do
         local p, a = line:match("^([^\t]+)\t?(.*)$")
         if p then table.insert(targets, { p, a }) end
      end
      file:close()
      next_target = 1 + (thread_id * 7919) % #targets
   end
end

local function event(n)
   local id = run .. "-" .. thread_id .. "-" .. n
   local player = "p" .. (n * 7919 + thread_id) % players
   if kind == "score" then
      return string.format('{"id":"%s","player_id":"%s","type":"score","data":{"points":%d}}',
         id, player, 1 + (n * 31) % 500)
   elseif kind == "demo" then
      local m = n % 5
      if m == 3 then
         return string.format('{"id":"%s","player_id":"%s","type":"meal.logged","data":{"healthy":%s}}',
            id, player, (n % 2 == 0) and "true" or "false")
      elseif m == 4 then
         return string.format('{"id":"%s","player_id":"%s","type":"session.started","data":{"minutes":30}}',
            id, player)
      end
      return string.format('{"id":"%s","player_id":"%s","type":"workout.completed","data":{"kind":"%s",'
         .. '"minutes":%d,"calories":%d,"distance_km":5}}', id, player, workouts[n % 4 + 1], 20 + n % 40,
         150 + n % 300)
   end
   if n % 3 == 0 then
      return string.format('{"id":"%s","player_id":"%s","type":"match.won","data":{"score":%d}}',
         id, player, (n * 37) % 1000)
   end
   return string.format('{"id":"%s","player_id":"%s","type":"enemy.killed","data":{"boss":%s}}',
      id, player, (n % 10 == 0) and "true" or "false")
end

function request()
   if mode == "get" then
      local t = targets[next_target]
      next_target = next_target % #targets + 1
      local headers = {}
      if t[2] ~= "" then headers["Authorization"] = t[2] end
      return wrk.format("GET", t[1], headers)
   end
   -- a headers table replaces wrk.headers whole: name every header the request needs
   local headers = { ["Content-Type"] = "application/json" }
   if auth ~= "" then headers["Authorization"] = auth end
   if batch == 1 then
      counter = counter + 1
      return wrk.format("POST", path, headers, event(counter))
   end
   local items = {}
   for i = 1, batch do
      counter = counter + 1
      items[i] = event(counter)
   end
   return wrk.format("POST", path, headers, '{"events":[' .. table.concat(items, ",") .. "]}")
end

-- answers by class; plain numbers, since only those cross from a thread's Lua state to done()
s2xx, s429, s503, s4xx, s5xx, sother = 0, 0, 0, 0, 0, 0

function response(status, headers, body)
   if status < 300 and status >= 200 then s2xx = s2xx + 1
   elseif status == 429 then s429 = s429 + 1
   elseif status == 503 then s503 = s503 + 1
   elseif status >= 500 then s5xx = s5xx + 1
   elseif status >= 400 then s4xx = s4xx + 1
   else sother = sother + 1 end
end

function done(summary, latency, requests)
   local names = { "s2xx", "s429", "s503", "s4xx", "s5xx", "sother" }
   local labels = { "2xx", "429", "503", "4xx", "5xx", "other" }
   local parts = {}
   for i, name in ipairs(names) do
      local n = 0
      for _, thread in ipairs(threads) do n = n + (thread:get(name) or 0) end
      if n > 0 then table.insert(parts, string.format('"%s":%d', labels[i], n)) end
   end
   io.write(string.format('QLJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,'
      .. '"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.timeout, summary.errors.status, latency:percentile(50),
      latency:percentile(90), latency:percentile(99), latency.max, latency.mean, table.concat(parts, ",")))
end
