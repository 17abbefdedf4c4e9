-- wrk script: every request a distinct batch of 20 events, half of them on the same 10 routes in every batch
-- (what a console on one page sends) and half on a database, table and row never seen before (batches.py's mix).
local counter = 0

local function event(db, table_name, row)
  return string.format(
    '{"type":"Data/SET_TABLE","route":"/console/data/%s/schema/public/tables/%s/browse?filter=id%%3B%%24eq%%3B%d",' ..
    '"payload":{"row":%d,"note":"payload text that is dropped unread"}}', db, table_name, row, row)
end

function request()
  local events = {}
  for i = 1, 10 do
    events[i] = event("db" .. i, "table" .. i, i)
  end
  for i = 11, 20 do
    counter = counter + 1
    local n = string.format("m%d", counter)
    events[i] = event("db" .. n, "t" .. n, 1000000 + counter)
  end
  local body = '{"events":[' .. table.concat(events, ",") .. '],"server_version":"v2.40.0"}'
  return wrk.format("POST", "/_telemetry/v1/events", {["Content-Type"] = "application/json"}, body)
end
