-- wrk script of bench/intake.py: replays pre-signed POST /v1/orders requests, one
-- line each ("<timestamp>\t<signature>\t<body>"), each body a unique order, so no
-- request is a duplicate. Run with -t1 (one Lua state reads the file). A request past
-- the end of the file goes to /exhausted (a 404, counted as non-2xx) so an
-- undersized file shows in the result instead of replaying orders.
local file = assert(io.open(os.getenv("BENCH_REQUESTS"), "r"))
local think = tonumber(os.getenv("BENCH_THINK_MS") or "0")

request = function()
  local line = file:read("*l")
  if line == nil then
    return wrk.format("GET", "/exhausted")
  end
  local ts, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
  return wrk.format("POST", "/v1/orders", {
    ["Content-Type"] = "application/json",
    ["X-Bridge-Timestamp"] = ts,
    ["X-Bridge-Signature"] = sig,
  }, body)
end

if think > 0 then
  delay = function()
    return think
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
