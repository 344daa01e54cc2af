-- PUT /api/relay/rest/endpoints/sip/{id} with {"caller_id": "..."}: a random existing endpoint each time.
-- wrk args: IDS_FILE AUTH_HEADER
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local ids, headers, n, prefix

setup = common.setup
done = common.done

function init(args)
   ids = common.load_lines(args[1])
   headers = { ["Authorization"] = args[2], ["Content-Type"] = "application/json" }
   prefix = "/api/relay/rest/endpoints/sip/"
   n = 0
   math.randomseed(tid * 7919 + os.time())
end

function request()
   n = n + 1
   local body = string.format('{"caller_id":"+1555%07d"}', (tid * 1000003 + n) % 10000000)
   return wrk.format("PUT", prefix .. ids[math.random(#ids)], headers, body)
end
