-- wrk script: like wrk_events.lua, but every event of every request names a database, a table and a row
-- never seen before, so nothing a cache kept from earlier batches helps.
local counter = 0
local thread_id = 0
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function request()
  local events = {}
  for i = 1, 20 do
    counter = counter + 1
    local n = string.format("%dx%d", thread_id, counter)
    events[i] = string.format(
      '{"type":"Data/SET_TABLE","route":"/console/data/db%s/schema/public/tables/t%s/browse?filter=id%%3B%%24eq%%3B%d",' ..
      '"payload":{"row":%d,"note":"payload text that is dropped unread"}}', n, n, counter, counter)
  end
  local body = '{"events":[' .. table.concat(events, ",") .. '],"server_version":"v2.40.0"}'
  return wrk.format("POST", "/_telemetry/v1/events", {["Content-Type"] = "application/json"}, body)
end
