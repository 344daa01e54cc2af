-- POST /api/relay/rest/endpoints/sip: create a new endpoint each time (unique username per run/thread/request).
-- wrk args: RUN_PREFIX AUTH_HEADER    (RUN_PREFIX must differ between runs against one database)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local headers, run, n

setup = common.setup
done = common.done

function init(args)
   run = args[1]
   headers = { ["Authorization"] = args[2], ["Content-Type"] = "application/json" }
   n = 0
end

function request()
   n = n + 1
   local body = string.format(
      '{"username":"%s-t%d-%d","password":"bench-pass-%d","caller_id":"+15550001111"}', run, tid, n, n)
   return wrk.format("POST", "/api/relay/rest/endpoints/sip", headers, body)
end
