"""promparse: the status page's metrics read by a real parser.

    fams, err = promparse.parse(text, "prometheus")    # or "openmetrics"

Debian's python3-prometheus-client (deploy/deps test installs it) has the
parsers Prometheus' own Python client uses: the text format 0.0.4
(prometheus_client.parser) and OpenMetrics (prometheus_client.openmetrics
.parser, strict: # EOF, counters' family names, histogram buckets in
order with +Inf and a matching _count).  The tests run on the machine's
python3, which may be an interpreter of its own without Debian's modules:
the parser runs in /usr/bin/python3, in a subprocess, and answers in
JSON.  promtext.py (promtool's rules) checks the same text its own way.
"""

import json
import subprocess

PYTHON = "/usr/bin/python3"

SCRIPT = r"""
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families as prom
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
text = sys.stdin.read()
try:
    fams = list((om if sys.argv[1] == "openmetrics" else prom)(text))
except Exception as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.exit(0)
print(json.dumps({"families": {f.name: {"type": f.type, "samples": [
    [s.name, s.labels, s.value if math.isfinite(s.value) else str(s.value)]
    for s in f.samples]} for f in fams}}))
"""


def parse(text, fmt="prometheus", timeout=30):
    """(families, None) or (None, why): families maps a family's name to
    {"type": ..., "samples": [[name, labels, value], ...]}."""
    try:
        r = subprocess.run([PYTHON, "-c", SCRIPT, fmt], input=text, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, text=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "%s: %s" % (PYTHON, e)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        return None, "the parser said: %s" % r.stdout[-600:]
    return out.get("families"), out.get("error")


def available():
    """Whether /usr/bin/python3 has the parsers."""
    try:
        return subprocess.run([PYTHON, "-c", "import prometheus_client.openmetrics.parser"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def samples(fams, family, **labels):
    """The samples of family whose labels include labels."""
    return [s for s in (fams or {}).get(family, {}).get("samples", [])
            if all(s[1].get(k) == v for k, v in labels.items())]
