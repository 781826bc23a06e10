-- wrk script: pipelining as in TechEmpower's plaintext test. Each write carries DEPTH
-- copies of the request (`wrk ... -s pipeline.lua URL -- DEPTH`, default 16); wrk writes the
-- next batch once every response to the previous one has arrived. wrk counts each response
-- as a request, but records one latency per batch: from the write to the batch's last response.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
