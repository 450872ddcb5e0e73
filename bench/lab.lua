-- One lab result per request, each a new (participant, visit, test), so every request is a real save.
local ids = {}
local tests = {{"ALT", "U/L", 55}, {"AST", "U/L", 60}, {"BILI", "umol/L", 120}, {"INR", "ratio", 1.4}, {"GGT", "U/L", 90},
  {"PTACT", "%", 60}, {"CREAT", "umol/L", 90}, {"SODIUM", "mmol/L", 136}, {"ALB", "g/L", 32}, {"PLAT", "10^9/L", 110},
  {"WBC", "10^9/L", 6}, {"LACTATE", "mmol/L", 1.6}}
local visits = {"screening", "baseline", "day_7", "day_14", "day_28", "month_3", "month_6"}
local counter, nthreads, first = 0, 1, 0
local token = os.getenv("BENCH_TOKEN")
local collected = os.getenv("BENCH_COLLECTED_AT")

function setup(thread)
  thread:set("tid", _G.__next_tid or 0)
  _G.__next_tid = (_G.__next_tid or 0) + 1
end

function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  nthreads = tonumber(args[2]) or 1
  -- Each run writes to participants earlier runs have not touched: args[3] is the run's number, and a run of
  -- 10 s at a few thousand saves a second uses fewer than 800 participants (84 saves each).
  first = (tonumber(args[3]) or 0) * 800
  tid = tonumber(tid) or 0
end

function request()
  local n = counter * nthreads + tid
  counter = counter + 1
  local per = #tests * #visits
  local id = ids[((first + math.floor(n / per)) % #ids) + 1]
  local combo = n % per
  local test = tests[(combo % #tests) + 1]
  local visit = visits[math.floor(combo / #tests) + 1]
  local body = string.format('{"visit":"%s","test":"%s","value":%s,"unit":"%s","collectedAt":"%s"}', visit, test[1], test[3], test[2], collected)
  return wrk.format("POST", "/api/v1/participants/" .. id .. "/labs",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
