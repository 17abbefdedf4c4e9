-- wrk script: POST one 20-event batch per request to the events endpoint, as the browser client does.
-- Routes carry identifiers and payloads carry data, so the proxy does its full work on every event.
local events = {}
for i = 1, 20 do
  events[i] = string.format(
    '{"type":"Data/SET_TABLE","route":"/console/data/db%d/schema/public/tables/table%d/browse?filter=id%%3B%%24eq%%3B%d",' ..
    '"payload":{"row":%d,"note":"payload text that is dropped unread"}}', i, i, i, i)
end

wrk.method = "POST"
wrk.path = "/_telemetry/v1/events"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"events":[' .. table.concat(events, ",") .. '],"server_version":"v2.40.0"}'
