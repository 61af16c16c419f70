-- One action per request, with a realistic ~400-byte payload.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
local types = {"crm_create", "crm_update", "helpdesk_create_ticket", "s3_export", "job_execution"}
local providers = {"hubspot", "hubspot", "zendesk", "s3", "scheduler"}
local n = 0

request = function()
  n = n + 1
  local i = (n % #types) + 1
  local status = (n % 20 == 0) and "failure" or "success"
  local body = string.format(
    '{"action_type":"%s","provider_name":"%s","service":"BenchService","source":"api",' ..
    '"user_id":"user%d@example.com","status":"%s","execution_time_ms":%d,' ..
    '"request_payload":{"email":"contact%d@example.com","firstname":"Ada","lastname":"Lovelace",' ..
    '"company":"Analytical Engines Ltd","phone":"+44 20 7946 0000","lifecyclestage":"lead",' ..
    '"notes":"Imported from the spring campaign; prefers email contact"},' ..
    '"response_data":{"id":"%d","properties":{"createdate":"2026-11-23T10:00:00Z"}}}',
    types[i], providers[i], n % 97, status, 50 + (n % 400), n, 100000 + n)
  return wrk.format(nil, nil, nil, body)
end
