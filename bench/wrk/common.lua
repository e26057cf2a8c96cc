-- Shared by the wrk scripts of `make bench` (loaded with dofile from each of them): numbers
-- the threads, counts non-2xx answers per thread, gives a monotonic clock, and at the end
-- prints one line that bench/run.mjs parses:
--   BENCH_RESULT {"requests":..,"rps":..,"p50_ms":..,"p99_ms":..,"errors":..,...}
-- Needs wrk 4.x built with LuaJIT (Debian's is).
local common = {}

-- Monotonic wall-clock seconds (wrk's Lua has no wall clock of its own; LuaJIT's FFI does).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
function common.now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- setup(thread): numbers the threads (global `tid` = 0..n-1) and keeps them for done().
local threads = {}
common.threads = threads
function common.setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Per-thread state, in each thread's own Lua environment.
non2xx = 0
statuses = {}

function common.count(status)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

-- The per-thread numeric global `name`, added over all threads.
function common.sum(name)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get(name) or 0)
  end
  return total
end

-- Prints BENCH_RESULT; `extra` adds or replaces fields (values are written as given).
function common.done(summary, latency, extra)
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local seen = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses") or {}) do
      seen[k] = (seen[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(seen) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  local keys = { "requests", "duration_s", "rps", "p50_ms", "p99_ms", "max_ms", "errors",
    "socket_errors", "statuses" }
  local fields = {
    requests = summary.requests,
    duration_s = string.format("%.3f", summary.duration / 1e6),
    rps = string.format("%.1f", summary.requests / (summary.duration / 1e6)),
    p50_ms = string.format("%.2f", latency:percentile(50) / 1000),
    p99_ms = string.format("%.2f", latency:percentile(99) / 1000),
    max_ms = string.format("%.2f", latency.max / 1000),
    -- Socket errors plus every answer that is not 2xx.
    errors = socket + common.sum("non2xx"),
    socket_errors = string.format('{"connect":%d,"read":%d,"write":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.timeout),
    statuses = "{" .. table.concat(parts, ",") .. "}",
  }
  for k, v in pairs(extra or {}) do
    if fields[k] == nil then table.insert(keys, k) end
    fields[k] = v
  end
  local out = {}
  for _, k in ipairs(keys) do
    table.insert(out, string.format('"%s":%s', k, tostring(fields[k])))
  end
  io.write("BENCH_RESULT {" .. table.concat(out, ",") .. "}\n")
end

return common
