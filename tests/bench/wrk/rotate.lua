-- wrk script for the warm-up: cycle through the paths in BENCH_PATHS
-- (blank-separated), so that one run warms every route of a
-- configuration.  Slower per request than a fixed path, which does not
-- matter for a warm-up that is not measured.

local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "%S+") do
   paths[#paths + 1] = p
end
local i = 0

request = function()
   i = i % #paths + 1
   return wrk.format(nil, paths[i])
end
