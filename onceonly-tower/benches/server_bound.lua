-- wrk script for benches/server_bound.rs: every request is a POST with its own
-- Idempotency-Key and a small Stripe-style JSON body with its own "id".
-- Argument: a prefix unique to the round, so keys never repeat across rounds.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  prefix = (args[1] or "run") .. "-" .. tid .. "-"
  n = 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  n = n + 1
  local id = prefix .. n
  headers["Idempotency-Key"] = id
  return wrk.format("POST", nil, headers, '{"id":"evt_' .. id .. '","type":"charge.succeeded"}')
end
