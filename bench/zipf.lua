-- wrk script for bench/dispatch.sh: requests for /z/NNNNN.bin, file k (1-based) drawn with probability
-- proportional to 1 / k^alpha (Zipf, as web object popularity), every request on a new connection.
-- Environment: BATON_ZIPF_FILES (count), BATON_ZIPF_ALPHA, BATON_ZIPF_SEED (each wrk thread adds its
-- index, so that a run's request sequence is the same for every configuration measured).
local files = tonumber(os.getenv("BATON_ZIPF_FILES"))
local alpha = tonumber(os.getenv("BATON_ZIPF_ALPHA") or "1.0")
local seed = tonumber(os.getenv("BATON_ZIPF_SEED") or "1")
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("index", threads)
end

local cdf = {}
init = function(args)
  math.randomseed(seed + (index or 0))
  local total = 0
  for k = 1, files do
    total = total + 1 / k ^ alpha
    cdf[k] = total
  end
  for k = 1, files do cdf[k] = cdf[k] / total end
end

local function draw()
  local u, lo, hi = math.random(), 1, files
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

request = function()
  return wrk.format("GET", string.format("/z/%05d.bin", draw()), {["Connection"] = "close"})
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BATON_WRK requests=%d bytes=%d connect=%d read=%d write=%d timeout=%d status=%d" ..
    " duration_us=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
