-- One audit event per request (hash chain included).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
local n = 0

request = function()
  n = n + 1
  local body = string.format(
    '{"action":"update","resource_type":"contact","resource_id":"c-%d","user_id":"admin@example.com",' ..
    '"before":{"name":"Old %d","stage":"lead"},"after":{"name":"New %d","stage":"customer"},' ..
    '"ip_address":"10.0.0.%d","user_agent":"bench/1.0"}',
    n % 5000, n, n, n % 250)
  return wrk.format(nil, nil, nil, body)
end
