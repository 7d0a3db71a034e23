#!/usr/bin/env python3
"""test_doc_links.py: every relative link of the Markdown files resolves.

For each Markdown file git tracks: every relative link and image (code
blocks and code spans left out) names a file or folder that exists, and
every anchor (`file.md#heading`, `#heading`) names a heading of that file,
as GitHub spells it (lower case, punctuation dropped, spaces to hyphens,
-1, -2 for repeats).  Then the README's length: at most 200 lines, so that
a newcomer reads it in five minutes.  The checker is first shown failing
on a made-up page with a broken link and a broken anchor.

Needs no server; about a second.
"""

import re
import subprocess
import tempfile
from pathlib import Path

from ..kit import REPO
from ..kit.tap import main

README_MAX_LINES = 200

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def slug(heading):
    """A heading's anchor, the way GitHub makes it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    """The anchors of a Markdown file's headings."""
    seen = {}
    out = set()
    for h in HEADING.findall(FENCE.sub("", path.read_text())):
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def relative_links(path):
    """The targets of path's relative links and images, outside code."""
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text()))
    return [t for t in LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


def problems(path):
    """(link, why) for each relative link of path that does not resolve."""
    out = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            out.append((target, "no such file"))
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            out.append((target, f"no heading #{anchor} in {dest.name}"))
    return out


def markdown_files():
    """The Markdown files git tracks, and those about to be added."""
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard",
         "*.md"], cwd=REPO, capture_output=True, text=True, check=True,
        timeout=30).stdout.split()
    return sorted(REPO / n for n in names if (REPO / n).exists())


def self_test(tap):
    with tempfile.TemporaryDirectory() as d:
        page = Path(d) / "page.md"
        (Path(d) / "other.md").write_text("# Other\n\n## A part\n")
        page.write_text("# Page\n\n## Part one\n\n"
                        "[ok](other.md#a-part) [ok](#part-one) "
                        "[ok](https://example.org/x)\n"
                        "[bad](missing.md) [bad](other.md#no-part)\n"
                        "[bad anchor](#part-two) `[in code](nowhere.md)`\n"
                        "```\n[in a block](nowhere.md)\n```\n")
        found = sorted(t for t, _ in problems(page))
        want = ["#part-two", "missing.md", "other.md#no-part"]
        tap.check(found == want,
                  "the checker finds a missing file, a missing heading "
                  "and a missing anchor, and nothing else",
                  [f"found {found}", f"want {want}"])
        tap.check(slug("The responder: `tfb-fcgi`") == "the-responder-tfb-fcgi"
                  and slug("What we test, and what we promise")
                  == "what-we-test-and-what-we-promise",
                  "headings become GitHub's anchors")


def body(tap):
    self_test(tap)
    files = markdown_files()
    tap.check(len(files) > 0, f"{len(files)} Markdown files found")
    for path in files:
        rel = path.relative_to(REPO)
        bad = problems(path)
        n = len(relative_links(path))
        tap.check(not bad, f"{rel}: {n - len(bad)} of {n} relative links "
                  "resolve", [f"{t}: {why}" for t, why in bad])
    lines = len((REPO / "README.md").read_text().splitlines())
    tap.check(lines <= README_MAX_LINES,
              f"README.md is {lines} lines, at most {README_MAX_LINES}")


if __name__ == "__main__":
    main(body, deadline=60)
