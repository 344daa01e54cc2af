-- GET /api/relay/rest/endpoints/sip/{id}: a random existing endpoint each time.
-- wrk args: IDS_FILE AUTH_HEADER
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local ids, headers, prefix

setup = common.setup
done = common.done

function init(args)
   ids = common.load_lines(args[1])
   headers = { ["Authorization"] = args[2] }
   prefix = "/api/relay/rest/endpoints/sip/"
   math.randomseed(tid * 7919 + os.time())
end

function request()
   return wrk.format("GET", prefix .. ids[math.random(#ids)], headers)
end
