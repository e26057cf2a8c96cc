-- wrk script: POST request-code for a new recipient every time, and keep each answer's
-- code so the validate-code run can use it. Recipients are "20" + a digit (BENCH_PREFIX +
-- thread number + 1) + an 8-digit counter, so no two requests share one (bench/run.mjs keeps
-- 7-9 for its own flows). Needs, in the environment: BENCH_INSTANCE, BENCH_TOKEN,
-- BENCH_CODES (file to write, one "chatId code" a line), BENCH_PREFIX (default 0).
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("^(.*/)") .. "common.lua")
setup = common.setup

local path = "/api/otp/v2/" .. os.getenv("BENCH_INSTANCE") .. "/request-code"
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  ["Content-Type"] = "application/json",
  ["Accept"] = "application/json",
}
local prefix = tonumber(os.getenv("BENCH_PREFIX") or "0")
local counter = 0
codes = {}
ncodes = 0

function request()
  counter = counter + 1
  local chat = string.format("20%d%08d", prefix + tid + 1, counter)
  return wrk.format("POST", path, headers, '{"chatId":"' .. chat .. '"}')
end

function response(status, hdrs, body)
  common.count(status)
  if status == 200 then
    local chat = body:match('"chat_id":"(%d+)')
    local code = body:match('"code":"([^"]+)"')
    if chat and code then
      ncodes = ncodes + 1
      codes[ncodes] = chat .. " " .. code
    end
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_CODES"), "w"))
  local n = 0
  for _, t in ipairs(common.threads) do
    for _, line in ipairs(t:get("codes") or {}) do
      out:write(line, "\n")
      n = n + 1
    end
  end
  out:close()
  common.done(summary, latency, { codes = n })
end
