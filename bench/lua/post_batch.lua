-- 100 actions per request through the batch route (a JSON array).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
local n = 0

local function item(k)
  local status = (k % 20 == 0) and "failure" or "success"
  return string.format(
    '{"action_type":"crm_create","provider_name":"hubspot","service":"BenchService",' ..
    '"source":"api","user_id":"user%d@example.com","status":"%s","execution_time_ms":%d,' ..
    '"request_payload":{"email":"contact%d@example.com","firstname":"Ada","lastname":"Lovelace",' ..
    '"company":"Analytical Engines Ltd","phone":"+44 20 7946 0000","lifecyclestage":"lead",' ..
    '"notes":"Imported from the spring campaign; prefers email contact"},' ..
    '"response_data":{"id":"%d"}}',
    k % 97, status, 50 + (k % 400), k, 100000 + k)
end

request = function()
  local items = {}
  for j = 1, 100 do
    n = n + 1
    items[j] = item(n)
  end
  return wrk.format(nil, nil, nil, '[' .. table.concat(items, ",") .. ']')
end
