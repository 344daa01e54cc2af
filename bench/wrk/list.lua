-- GET /api/relay/rest/endpoints/sip?filter_username=FILTER: one fixed request (matches a few rows).
-- wrk args: FILTER AUTH_HEADER
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

function init(args)
   -- A static request: wrk builds it once per connection, no Lua call per request.
   wrk.method = "GET"
   wrk.path = "/api/relay/rest/endpoints/sip?filter_username=" .. args[1]
   wrk.headers["Authorization"] = args[2]
end
