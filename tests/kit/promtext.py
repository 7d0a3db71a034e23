"""promtext.py: a strict checker of Prometheus' text exposition format
(0.0.4), for the status page's ?prometheus output.

    problems = promtext.check(text)     # [] when the page is clean

It does what `promtool check metrics` does: parse the page as
Prometheus' own parser would (expfmt's TextParser), then lint it as
promtool does (promlint); every finding is a problem, lint included.
Debian's prometheus package would give promtool itself, at 96 MB and a
system service that starts on install: this is the equally strict parser
the tests use instead, and it is tested with pages known to be wrong
(selftest()).  Python standard library only.

The rules, from the format's specification and promtool's sources:
  * lines end in "\\n", the last one included; no empty lines inside a
    family's samples are needed, blank lines are allowed;
  * "# HELP name text" and "# TYPE name type" at most once per family,
    TYPE before the family's first sample, type one of counter, gauge,
    histogram, summary, untyped; other "# ..." lines are comments;
  * a family's samples are contiguous: once another family started, the
    name may not come back;
  * metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
    [a-zA-Z_][a-zA-Z0-9_]* and not "__"-prefixed, label values quoted
    with \\\\, \\" and \\n as the only escapes, no label twice;
  * the value a Go float (NaN, +Inf, -Inf included), an optional
    timestamp an integer; no series (name and labels) twice;
  * a counter's samples are named as the family, a histogram's and a
    summary's as the family with _bucket/_sum/_count (a summary: none
    or quantile label), a histogram's buckets have le;
  * lint: HELP for every family; counters end in _total and nothing else
    does; snake_case names; no abbreviated units (ms, kb, ...) among
    a name's words.
"""

import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf)$|NaN$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
# promlint's unit abbreviations (name words that should be spelt out).
ABBREVIATIONS = {"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb",
                 "m", "h", "d"}


def _labels(s, i, lineno, problems):
    """Parse {a="b",...} at s[i] == "{"; (dict, index after "}") or
    (None, _) after a problem."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            problems.append("line %d: a bad label name at column %d" % (lineno, i + 1))
            return None, i
        name = m.group(0)
        if name.startswith("__"):
            problems.append("line %d: label %s is reserved" % (lineno, name))
        if name in labels:
            problems.append("line %d: label %s twice" % (lineno, name))
        i = m.end()
        if s[i:i + 2] != '="':
            problems.append("line %d: label %s without =\"value\"" % (lineno, name))
            return None, i
        i += 2
        value = []
        while True:
            if i >= len(s):
                problems.append("line %d: label %s's value is not closed" % (lineno, name))
                return None, i
            c = s[i]
            if c == "\\":
                esc = s[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    problems.append("line %d: a bad escape \\%s in label %s"
                                    % (lineno, esc, name))
                    return None, i
                value.append({"n": "\n"}.get(esc, esc))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        labels[name] = "".join(value)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] != "}":
            problems.append("line %d: expected , or } after label %s" % (lineno, name))
            return None, i


def _family_of(name, types):
    """The family a sample name belongs to, given the TYPEs seen."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                return base
    return name


def parse(text):
    """(families, problems): families maps a name to {"type", "help",
    "samples": [(name, labels, value)]}; problems are the parser's."""
    problems = []
    families = {}
    types = {}
    order = []  # families in the order their lines appeared
    series = set()
    if text and not text.endswith("\n"):
        problems.append("the last line does not end in a newline")
    for lineno, line in enumerate(text.split("\n")[:-1] if text.endswith("\n")
                                  else text.split("\n"), 1):
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line[1:].lstrip(" ").split(" ", 2) if line.startswith("# ") \
                else []
            if len(parts) >= 2 and parts[0] in ("HELP", "TYPE"):
                kind, name = parts[0], parts[1]
                rest = parts[2] if len(parts) > 2 else ""
                if not NAME.fullmatch(name):
                    problems.append("line %d: a bad metric name %r" % (lineno, name))
                    continue
                fam = families.setdefault(name, {"type": None, "help": None,
                                                 "samples": []})
                if order and order[-1] != name and name in order:
                    problems.append("line %d: %s %s after its family ended"
                                    % (lineno, kind, name))
                if kind == "HELP":
                    if fam["help"] is not None:
                        problems.append("line %d: a second HELP for %s" % (lineno, name))
                    if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                        problems.append("line %d: a bad escape in %s's HELP" % (lineno, name))
                    fam["help"] = rest
                else:
                    if fam["type"] is not None:
                        problems.append("line %d: a second TYPE for %s" % (lineno, name))
                    if fam["samples"]:
                        problems.append("line %d: TYPE %s after its samples" % (lineno, name))
                    if rest not in TYPES:
                        problems.append("line %d: an unknown type %r" % (lineno, rest))
                    fam["type"] = rest
                    types[name] = rest
                if not order or order[-1] != name:
                    order.append(name)
            continue
        m = NAME.match(line)
        if not m:
            problems.append("line %d: not a sample: %r" % (lineno, line[:60]))
            continue
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _labels(line, i, lineno, problems)
            if labels is None:
                continue
        rest = line[i:]
        if not rest.startswith(" "):
            problems.append("line %d: no space before the value" % lineno)
            continue
        fields = rest.split(" ")[1:]
        if len(fields) not in (1, 2) or not FLOAT.match(fields[0]):
            problems.append("line %d: a bad value %r" % (lineno, rest.strip()))
            continue
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            problems.append("line %d: a bad timestamp %r" % (lineno, fields[1]))
        fam_name = _family_of(name, types)
        fam = families.setdefault(fam_name, {"type": None, "help": None, "samples": []})
        if order and order[-1] != fam_name and fam_name in order:
            problems.append("line %d: %s's samples are not together" % (lineno, fam_name))
        if not order or order[-1] != fam_name:
            order.append(fam_name)
        t = fam["type"]
        if t == "counter" and name != fam_name:
            problems.append("line %d: counter %s has a sample named %s"
                            % (lineno, fam_name, name))
        if t == "histogram" and name == fam_name + "_bucket" and "le" not in labels:
            problems.append("line %d: a bucket of %s without le" % (lineno, fam_name))
        if t in ("histogram", "summary") and name == fam_name and \
                (t == "histogram" or "quantile" not in labels):
            problems.append("line %d: %s %s has a bare sample" % (lineno, t, fam_name))
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            problems.append("line %d: series %s%s twice" % (lineno, name, labels))
        series.add(key)
        fam["samples"].append((name, labels, float(fields[0].replace("inf", "Inf")
                                                   .replace("Inf", "inf"))))
    return families, problems


def lint(families):
    """promtool's lint findings."""
    problems = []
    for name, fam in families.items():
        if not fam["help"]:
            problems.append("%s: no help text" % name)
        if fam["type"] == "counter" and not name.endswith("_total"):
            problems.append("%s: a counter should end in _total" % name)
        if fam["type"] != "counter" and name.endswith("_total"):
            problems.append("%s: a %s should not end in _total" % (name, fam["type"]))
        if re.search(r"[a-z][A-Z]", name):
            problems.append("%s: snake_case, not camelCase" % name)
        words = name.split("_")
        for w in words[1:]:
            if w in ABBREVIATIONS:
                problems.append("%s: the unit %r abbreviated" % (name, w))
        if not fam["samples"]:
            problems.append("%s: a family without samples" % name)
    return problems


def check(text):
    """Every problem with the page: the parser's, then the lint's."""
    families, problems = parse(text)
    return problems + (lint(families) if not problems else [])


BAD_PAGES = {
    "no newline at the end": "# HELP a_total x\n# TYPE a_total counter\na_total 1",
    "a sample before its TYPE":
        "# HELP a_total x\na_total 1\n# TYPE a_total counter\n",
    "a counter without _total": "# HELP a x\n# TYPE a counter\na 1\n",
    "no HELP": "# TYPE a gauge\na 1\n",
    "a family split in two": "# HELP a x\n# TYPE a gauge\na{x=\"1\"} 1\n"
                             "# HELP b x\n# TYPE b gauge\nb 1\na{x=\"2\"} 2\n",
    "a series twice": "# HELP a x\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
    "an unquoted label value": "# HELP a x\n# TYPE a gauge\na{x=1} 1\n",
    "a bad escape": "# HELP a x\n# TYPE a gauge\na{x=\"\\t\"} 1\n",
    "a bad value": "# HELP a x\n# TYPE a gauge\na 1,5\n",
    "a bad name": "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
    "a reserved label": "# HELP a x\n# TYPE a gauge\na{__x=\"1\"} 1\n",
    "an unknown type": "# HELP a x\n# TYPE a meter\na 1\n",
    "an abbreviated unit": "# HELP a_kb x\n# TYPE a_kb gauge\na_kb 1\n",
    "a gauge ending in _total": "# HELP a_total x\n# TYPE a_total gauge\na_total 1\n",
    "a label twice": "# HELP a x\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",
}

GOOD_PAGE = ("# HELP a_total Things.\n# TYPE a_total counter\n"
             "a_total{x=\"a\\\\b\\\"c\\n\"} 1\na_total{x=\"2\"} 2 1700000000000\n"
             "# A comment.\n\n"
             "# HELP b_seconds Time.\n# TYPE b_seconds histogram\n"
             "b_seconds_bucket{le=\"0.1\"} 1\nb_seconds_bucket{le=\"+Inf\"} 2\n"
             "b_seconds_sum 0.3\nb_seconds_count 2\n"
             "# HELP c Level.\n# TYPE c gauge\nc NaN\nc{y=\"1\"} -Inf\nc{y=\"2\"} 1e-3\n")


def selftest():
    """(passed, details): the checker finds fault with each known-bad
    page and none with a good one."""
    details = []
    for what, page in BAD_PAGES.items():
        if not check(page):
            details.append("not caught: %s" % what)
    good = check(GOOD_PAGE)
    if good:
        details.append("a good page refused: %s" % good)
    return not details, details
