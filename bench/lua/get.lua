-- GET of BENCH_PATH with the tenant key; wrk reports latency percentiles and non-2xx counts.
-- Each response's `Server-Timing: app;dur=<ms>` is collected too, and its percentiles printed:
-- the service's own time, without the client's or the loopback's.
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
wrk.path = os.getenv("BENCH_PATH") or "/health"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  server_ms = {}
end

function response(status, headers, body)
  local timing = headers["server-timing"]
  local ms = timing and tonumber(string.match(timing, "dur=([%d.]+)"))
  if ms then
    server_ms[#server_ms + 1] = ms
  end
end

function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    for _, ms in ipairs(thread:get("server_ms")) do
      all[#all + 1] = ms
    end
  end
  table.sort(all)
  if #all > 0 then
    local function at(p)
      return all[math.max(1, math.ceil(#all * p / 100))]
    end
    io.write(string.format("Server-Timing p50 %.3f p99 %.3f n %d\n", at(50), at(99), #all))
  end
end
