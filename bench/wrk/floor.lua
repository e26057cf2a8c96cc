-- wrk script for the floor Worker: POSTs to the path given on the command line
-- (/hot or /new) and reports through common.lua.
-- Usage: wrk -t2 -c16 -d8s -s bench/wrk/floor.lua http://127.0.0.1:PORT -- /new
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("^(.*/)") .. "common.lua")
setup = common.setup

local req
function init(args)
  req = wrk.format("POST", args[1] or "/hot", { ["Content-Length"] = "0" }, "")
end

function request()
  return req
end

function response(status, headers, body)
  common.count(status)
end

function done(summary, latency, requests)
  common.done(summary, latency)
end

-- Like validate-code.lua, which needs it: the same per-request cost on both sides.
function delay()
  return 0
end
