"""What every wrk Lua script of scripts/bench.py ends with: the threads' counts summed, and the one
``BENCHJSON`` line bench.py reads. Lua, inserted as it is (a plain string: no f-string braces)."""

REPORT = r'''-- The counts of every thread, and the run's one BENCHJSON line (read by scripts/bench.py).
local function thread_counts()
  local c = { n200 = 0, n500 = 0, nother = 0, ntrue = 0, nfalse = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  return c
end

local function report(summary, latency, c)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, ' ..
    '"err_timeout": %d, "n200": %d, "n500": %d, "nother": %d, "ntrue": %d, "nfalse": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    c.n200, c.n500, c.nother, c.ntrue, c.nfalse))
end
'''


# The start of the Lua scripts of the JSON scenarios (scripts/bench_ciam.py): the threads kept for
# thread_counts, and each thread's counters and random seed.
THREAD_SETUP = r'''local threads = {}

function setup(thread) table.insert(threads, thread) end

function init(args)
  n200, n500, nother, ntrue, nfalse = 0, 0, 0, 0, 0
  math.randomseed(os.time() + os.clock() * 1000000)
end
'''

# Their end: REPORT, and wrk's done() writing the BENCHJSON line.
REPORT_DONE = REPORT + r'''
function done(summary, latency, requests)
  report(summary, latency, thread_counts())
end
'''
