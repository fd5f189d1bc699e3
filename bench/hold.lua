-- wrk script: POSTs one JSON body to one path, counts the responses per HTTP status and, when every
-- wrk thread owns exactly one connection, times every request itself.
--
-- Configured through environment variables (bench/holds.py sets them):
--   BENCH_PATH   request path, e.g. /api/v1/events/1/holds
--   BENCH_BODY   JSON body,    e.g. {"tickets":[{"ticket_type_id":1,"quantity":1}]}
--   BENCH_EXACT  "1" when wrk runs with -t equal to -c (one connection per thread): then each thread
--                has at most one request in flight, so request() -> response() is that request's
--                latency. The latencies are sorted in done() and reported exactly.
--
-- Why not wrk's own latency histogram: on the benchmark machine (wrk 4.1.0, Debian) its mean came out
-- up to several times larger than connections x duration / completed requests allows (Little's law),
-- while the per-request times measured here match that bound. bench/holds.py still records wrk's
-- numbers next to these.
--
-- done() prints machine-readable lines:
--   BENCH_STATUS 201=1234 409=0
--   BENCH_LATENCY n=... mean_us=... p50_us=... p75_us=... p90_us=... p99_us=... p999_us=... max_us=...
--   BENCH_SUMMARY duration_us=... requests=... connect=... read=... write=... status=... timeout=...

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/api/v1/events/1/holds"
wrk.body = os.getenv("BENCH_BODY") or '{"tickets":[{"ticket_type_id":1,"quantity":1}]}'
wrk.headers["Content-Type"] = "application/json"

local exact = os.getenv("BENCH_EXACT") == "1"
local now = nil
if exact then
  local ok, ffi = pcall(require, "ffi")
  if ok then
    pcall(ffi.cdef, [[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clk_id, bench_timespec *tp);
    ]])
    local ts = ffi.new("bench_timespec")
    now = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state); done() merges it.
counts = {}
lat = {}
local sent_at = nil
local req = nil

function init(args)
  req = wrk.format()
end

if now then
  function request()
    sent_at = now()
    return req
  end
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
  if sent_at then
    lat[#lat + 1] = now() - sent_at
    sent_at = nil
  end
end

function done(summary, latency, requests)
  local total = {}
  local all = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    if c then
      for status, n in pairs(c) do
        total[status] = (total[status] or 0) + n
      end
    end
    local l = thread:get("lat")
    if l then
      for i = 1, #l do
        all[#all + 1] = l[i]
      end
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format("%s=%d", status, n))
  end
  table.sort(parts)
  io.write("BENCH_STATUS " .. table.concat(parts, " ") .. "\n")

  local n = #all
  if n > 0 then
    table.sort(all)
    local sum = 0
    for i = 1, n do
      sum = sum + all[i]
    end
    local function pct(p)
      local rank = math.ceil(p / 100 * n)
      if rank < 1 then rank = 1 end
      return all[rank]
    end
    io.write(string.format(
      "BENCH_LATENCY n=%d mean_us=%.1f p50_us=%.1f p75_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
      n, sum / n, pct(50), pct(75), pct(90), pct(99), pct(99.9), all[n]
    ))
  else
    io.write("BENCH_LATENCY n=0\n")
  end

  local e = summary.errors
  io.write(string.format(
    "BENCH_SUMMARY duration_us=%d requests=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout
  ))
end
