-- wrk script: each request carries the session cookie of the next user in turn.
-- Usage: wrk ... -s sessions.lua URL -- COOKIE_FILE
-- Counts every answer that is not a 200 (wrk itself ignores 3xx, and a redirect to
-- the login page would look like success) and prints one JSON line when done.

local cookies = {}
local next_user = 0
not_ok = 0  -- global: done() reads it from each thread
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    cookies[#cookies + 1] = line
  end
  next_user = math.random(#cookies)
end

function request()
  next_user = next_user % #cookies + 1
  return wrk.format("GET", nil, {
    ["Cookie"] = cookies[next_user],
    ["User-Agent"] = "keyhold-bench",
  })
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "not_ok": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, bad,
    e.connect + e.read + e.write + e.timeout))
end
