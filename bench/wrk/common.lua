-- Shared by the bench/wrk/*.lua scripts (loaded with dofile from the script's own directory).
-- wrk runs each thread in its own Lua state: setup() and done() in the main one, init()/request() per thread.
local M = {}

local threads = {}
local next_id = 0

-- setup(thread): number the threads so each can seed its own random stream and name its rows.
function M.setup(thread)
   next_id = next_id + 1
   thread:set("tid", next_id)
   threads[#threads + 1] = thread
end

function M.load_lines(path)
   local out = {}
   for line in io.lines(path) do
      if #line > 0 then out[#out + 1] = line end
   end
   assert(#out > 0, "no lines in " .. path)
   return out
end

-- One machine-readable line for bench/api.py; latencies are in microseconds inside wrk.
-- errors.status counts responses with status > 399 (wrk's "Non-2xx or 3xx responses").
function M.done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_s":%.6f,"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,'
         .. '"max_ms":%.3f,"mean_ms":%.3f,"non2xx":%d,"connect_errors":%d,"read_errors":%d,'
         .. '"write_errors":%d,"timeouts":%d,"bytes":%d}\n',
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
      latency.max / 1e3, latency.mean / 1e3,
      e.status, e.connect, e.read, e.write, e.timeout, summary.bytes))
end

return M
