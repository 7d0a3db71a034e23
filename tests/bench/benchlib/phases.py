"""phases: what the pool's status page says about a measured window.

The status page (`tfb-spawn status SOCKET json`, read by stack.status())
sums, over the pool's workers, the requests they served and the time
their requests spent in each phase: reading the request, waiting on the
database, rendering (our own code), writing the response.  Read just
before and just after a window, the difference says where a request's
time went inside a worker:

    before = st.status()
    ... load ...
    after = st.status()
    pt.update(window(before, after))   # status_requests, phase_us_*, ...

The page is served by a process of the supervisor's, not by a worker, so
reading it adds no request to the counts.  Its maxima (listen queue,
active processes) run from the pool's start and cannot be reset: a
maximum that grew in the window is the window's own, one that did not
is only a bound on it.
"""

PHASES = ("reading", "database", "rendering", "writing")

# The page's maxima, and the point's fields they go to.
MAXIMA = (("max listen queue", "listen_queue_max"),
          ("max active processes", "active_max"))


def window(before, after):
    """The point's fields from two status pages (dicts, or None when the
    page could not be read): status_requests, the requests the workers
    served; phase_us_PHASE, the mean µs per request in each phase (absent
    when the workers timed no phase: --timing off); for each maximum its
    value after the window and NAME_new, whether it was reached in it.
    {} without both pages."""
    if not before or not after:
        return {}
    n = after["requests"] - before["requests"]
    out = {"status_requests": n}
    secs = {p: after["phase seconds"][p] - before["phase seconds"][p]
            for p in PHASES}
    if n > 0 and sum(secs.values()) > 0:
        for p in PHASES:
            out[f"phase_us_{p}"] = secs[p] / n * 1e6
    for key, name in MAXIMA:
        out[name] = after[key]
        out[f"{name}_new"] = after[key] > before[key]
    return out


def total_us(row):
    """A request's time in a worker, µs: the sum of its phases, or None."""
    vals = [row.get(f"phase_us_{p}") for p in PHASES]
    return None if None in vals else sum(vals)


def shares(row):
    """Each phase's share of a request's time in a worker, in phase
    order, or None."""
    total = total_us(row)
    if not total:
        return None
    return [row[f"phase_us_{p}"] / total for p in PHASES]
