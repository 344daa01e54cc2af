-- GET PATH: one fixed request, e.g. /healthz, to show what the framework alone costs.
-- wrk args: PATH AUTH_HEADER
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

function init(args)
   wrk.method = "GET"
   wrk.path = args[1]
   wrk.headers["Authorization"] = args[2]
end
