-- wrk script for `candor-bench recommend --hold-secs N`: GET /v1/recommendations/user-N with a
-- random served subject per request.
--   WRK_KEY=<secret> WRK_SERVED=20000 wrk -t2 -c32 -d20s --latency -s wrk_recommend.lua http://127.0.0.1:PORT
local key = os.getenv("WRK_KEY")
local served = tonumber(os.getenv("WRK_SERVED") or "20000")
local counter = 0

function setup(thread)
  thread:set("seed", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(os.time() + (seed or 0) * 7919)
end

request = function()
  local path = "/v1/recommendations/user-" .. math.random(0, served - 1) .. "?surface=home&k=10"
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. key })
end

response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("HTTP " .. status .. ": " .. body .. "\n")
  end
end
