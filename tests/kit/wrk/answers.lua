-- answers.lua: wrk's load when every answer must be known, not only that
-- it was not a 2xx (the fault tests), or when the requests must rotate
-- over several paths (the bench's warm-up); tests/kit/load.py reads it.
--
--   wrk -s answers.lua URL [-- PATH...]
--
-- The requests rotate over the PATHs (the URL's own path when none is
-- given), each thread starting at its own place.  When the run ends, one
-- line per kind of answer, then stats.lua's line (the counts, the errors,
-- the latencies):
--
--   answer STATUS CONTENT-TYPE COUNT LONGEST-BODY
--   WRK_JSON {...}

-- wrk_json(), stats.lua's line, from the file beside this one.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "stats.lua")

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

-- Per thread (each has a Lua state of its own): the paths, and the
-- answers seen, keyed by "STATUS CONTENT-TYPE", as strings so that
-- thread:get() copies them to done() unchanged.
local paths, next_path = {}, 0
counts, longest = {}, {}

function init(args)
    for _, p in ipairs(args) do
        table.insert(paths, p)
    end
    next_path = id or 0
end

function request()
    if #paths == 0 then
        return wrk.format()
    end
    next_path = next_path % #paths + 1
    return wrk.format(nil, paths[next_path])
end

function response(status, headers, body)
    -- wrk keeps header names as the server sent them.
    local ctype = headers["Content-Type"] or headers["content-type"] or "-"
    ctype = ctype:match("^[^;%s]+") or "-"
    local key = tostring(status) .. " " .. ctype
    counts[key] = (counts[key] or 0) + 1
    if #body > (longest[key] or 0) then
        longest[key] = #body
    end
end

function done(summary, latency, requests)
    local total, worst = {}, {}
    for _, t in ipairs(threads) do
        for k, n in pairs(t:get("counts") or {}) do
            total[k] = (total[k] or 0) + n
        end
        for k, n in pairs(t:get("longest") or {}) do
            if n > (worst[k] or 0) then
                worst[k] = n
            end
        end
    end
    for k, n in pairs(total) do
        io.write(string.format("answer %s %d %d\n", k, n, worst[k] or 0))
    end
    wrk_json(summary, latency)
end
