-- wrk script: cycles through the testbed's content paths (one per line in $BATON_WRK_PATHS), with
-- "Connection: close" when $BATON_WRK_CLOSE=1 so that every request is a new connection (a new handoff).
local paths = {}
for line in io.lines(os.getenv("BATON_WRK_PATHS")) do paths[#paths + 1] = line end
local close = os.getenv("BATON_WRK_CLOSE") == "1"
local counter = 0

request = function()
  counter = counter + 1
  local headers = {}
  if close then headers["Connection"] = "close" end
  return wrk.format("GET", paths[(counter % #paths) + 1], headers)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BATON_WRK requests=%d bytes=%d connect=%d read=%d write=%d timeout=%d status=%d" ..
    " duration_us=%d p50_us=%d p99_us=%d p999_us=%d\n",
    summary.requests, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
