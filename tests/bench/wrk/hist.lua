-- wrk script of the bench: stats.lua's WRK_JSON line (tests/kit/wrk),
-- then the latency histogram, so that the repetitions of a point can be
-- merged and their percentiles read from the whole (a median of p99s is
-- not a p99).
--
-- WRK_HIST b:n,b:n,...  n requests took between 1.01^b and 1.01^(b+1)
-- microseconds: buckets 1% wide, a few hundred per run, read by
-- tests/bench/benchlib/spread.py.  wrk's own histogram is exact to the
-- microsecond; latency(i) is its i-th distinct value and its count.

dofile(os.getenv("TFB_WRK_STATS"))

local LOG_STEP = math.log(1.01)

done = function(summary, latency, requests)
   wrk_json(summary, latency)
   local buckets, order = {}, {}
   for i = 1, #latency do
      local v, n = latency(i)
      local b = 0
      if v >= 1 then
         b = math.floor(math.log(v) / LOG_STEP)
      end
      if buckets[b] == nil then
         buckets[b] = 0
         order[#order + 1] = b
      end
      buckets[b] = buckets[b] + n
   end
   table.sort(order)
   local parts = {}
   for _, b in ipairs(order) do
      parts[#parts + 1] = b .. ":" .. buckets[b]
   end
   io.write("WRK_HIST " .. table.concat(parts, ",") .. "\n")
end
