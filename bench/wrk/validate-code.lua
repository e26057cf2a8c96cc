-- wrk script: POST validate-code once for each (chatId, code) of a file, always with the
-- right code, so every answer should be 200. The lines are dealt out to the threads
-- (thread i takes lines i, i+n, ...). The run ends when every code has been used (each
-- thread stops once its codes are answered) or at wrk's -d, whichever comes first; the
-- rate is validations / (last answer - first request), timed with LuaJIT's FFI, because
-- wrk's own duration would include the idle end of a run that ran out of codes.
-- Needs, in the environment: BENCH_INSTANCE, BENCH_TOKEN, BENCH_CODES (the file),
-- BENCH_THREADS (wrk's -t).
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("^(.*/)") .. "common.lua")
setup = common.setup

local path = "/api/otp/v2/" .. os.getenv("BENCH_INSTANCE") .. "/validate-code"
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  ["Content-Type"] = "application/json",
  ["Accept"] = "application/json",
}
local mine = {}
local reserved = 0 -- codes promised to a connection by delay()
local taken = 0    -- codes sent
local spare_req
spare = 0          -- answers to spare requests (not validations)
first_at = 0
last_at = 0
answered = 0

function init(args)
  spare_req = wrk.format("GET", "/health")
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("BENCH_CODES")) do
    if i % nthreads == tid then
      local chat, code = line:match("^(%S+) (%S+)$")
      table.insert(mine, wrk.format("POST", path, headers,
        '{"chatId":"' .. chat .. '","code":"' .. code .. '"}'))
    end
    i = i + 1
  end
end

-- Called before each request: 0 ms while codes are left; once they are all promised, the
-- connection waits (longer than any run) instead of sending anything else.
function delay()
  if reserved < #mine then
    reserved = reserved + 1
    return 0
  end
  return 3600000
end

-- Sends the next code, if delay() promised one. wrk also calls request() once on thread 0
-- before the run to check the script, and again after a reconnect without asking delay():
-- those get GET /health, so no code is ever lost or used twice.
function request()
  if taken >= reserved then
    return spare_req
  end
  taken = taken + 1
  if first_at == 0 then first_at = common.now() end
  return mine[taken]
end

function response(status, hdrs, body)
  common.count(status)
  if body:sub(1, 10) == '{"status":' then
    spare = spare + 1
    return
  end
  answered = answered + 1
  last_at = common.now()
  if answered >= #mine then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local first, last = math.huge, 0
  for _, t in ipairs(common.threads) do
    local f, l = t:get("first_at"), t:get("last_at")
    if f > 0 and f < first then first = f end
    if l > last then last = l end
  end
  local validated = common.sum("answered")
  local elapsed = last > first and (last - first) or 0
  common.done(summary, latency, {
    validated = validated,
    spare = common.sum("spare"),
    elapsed_s = string.format("%.3f", elapsed),
    rps = elapsed > 0 and string.format("%.1f", validated / elapsed) or 0,
  })
end
