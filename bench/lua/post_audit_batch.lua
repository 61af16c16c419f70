-- 100 audit events per request through the audit batch route ({"events": [...]}).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
local n = 0

local function item(k)
  return string.format(
    '{"action":"update","resource_type":"contact","resource_id":"c-%d","user_id":"admin@example.com",' ..
    '"before":{"name":"Old %d","stage":"lead"},"after":{"name":"New %d","stage":"customer"},' ..
    '"ip_address":"10.0.0.%d","user_agent":"bench/1.0"}',
    k % 5000, k, k, k % 250)
end

request = function()
  local items = {}
  for j = 1, 100 do
    n = n + 1
    items[j] = item(n)
  end
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(items, ",") .. ']}')
end
