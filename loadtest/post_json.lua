-- wrk script: POST the JSON document in $BODY and validate every response (status 200, body
-- contains $EXPECT, no "errors"); prints "validated N invalid M" at the end. Closed loop: for peak
-- throughput and CPU per request only, never for latency percentiles.
--
--   BODY='{"query":"{ __typename }"}' EXPECT='"__typename":"Query' \
--     wrk -t1 -c32 -d10s -s loadtest/post_json.lua http://127.0.0.1:18095/graphql
wrk.method = "POST"
wrk.body = os.getenv("BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local expect = os.getenv("EXPECT") or ""
local threads = {}
good, bad = 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status == 200 and body:find(expect, 1, true) and not body:find('"errors"', 1, true) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, thread in ipairs(threads) do
    g = g + thread:get("good")
    b = b + thread:get("bad")
  end
  io.write(string.format("validated %d invalid %d\n", g, b))
end
