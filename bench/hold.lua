-- wrk script: POSTs one JSON body to one path and counts the responses per HTTP status.
--
-- Configured through environment variables (bench/holds.py sets them):
--   BENCH_PATH  request path, e.g. /api/v1/events/1/holds
--   BENCH_BODY  JSON body,    e.g. {"tickets":[{"ticket_type_id":1,"quantity":1}]}
--
-- done() prints two machine-readable lines:
--   BENCH_STATUS 201=1234 409=0            (responses per status, all threads summed)
--   BENCH_SUMMARY duration_us=... requests=... connect=... read=... write=... status=... timeout=...

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/api/v1/events/1/holds"
wrk.body = os.getenv("BENCH_BODY") or '{"tickets":[{"ticket_type_id":1,"quantity":1}]}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread counters (each wrk thread has its own Lua state); done() sums them.
counts = {}

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    if c then
      for status, n in pairs(c) do
        total[status] = (total[status] or 0) + n
      end
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format("%s=%d", status, n))
  end
  table.sort(parts)
  io.write("BENCH_STATUS " .. table.concat(parts, " ") .. "\n")
  local e = summary.errors
  io.write(string.format(
    "BENCH_SUMMARY duration_us=%d requests=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout
  ))
end
