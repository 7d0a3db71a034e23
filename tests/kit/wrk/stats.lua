-- wrk script: print one machine-readable line at the end of a run.
--
-- wrk's own summary rounds latencies and prints percentiles only with
-- --latency; done() sees the exact histogram.  tests/kit/load.py reads the
-- line that starts with WRK_JSON (answers.lua prints it too).  Latencies
-- are in microseconds.  No request() or response() here: wrk then sends
-- the one request it made at the start, without calling into Lua, as fast
-- as it can.
--
-- errors.status counts responses with a status >= 400 (wrk's rule); the
-- app and the front servers never answer 1xx or 3xx here, so it is the
-- number of non-2xx responses.

function wrk_json(summary, latency)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
      '"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean))
end

done = function(summary, latency, requests)
   wrk_json(summary, latency)
end
