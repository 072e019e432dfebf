#!/usr/bin/env python3
"""docs/evaluation.md against the JSON it is rendered from (CTest, label docs).

  tests/evaluation_doc_test.py [--doc FILE] [--results DIR]

1. Every Markdown table (outside code blocks) sits inside a `<!-- generated:NAME begin -->`
   ... `<!-- generated:NAME end -->` block, or right after a `<!-- static: reason -->` mark
   with a reason. Blocks do not nest, each begin has its end, and every static mark is
   followed by a table.
2. `scripts/evaluate --tables-only` on a copy of the document reproduces it byte for byte from
   the JSON in bench/results: a table edited by hand, or JSON changed without rendering it
   again, fails here.
"""
import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = re.compile(r"^<!-- generated:([a-z0-9-]+) begin -->$")
END = re.compile(r"^<!-- generated:([a-z0-9-]+) end -->$")
STATIC = re.compile(r"^<!-- static: *(.*?) *-->$")


def placement_errors(text, path):
    errors, block, fence, last, static_line = [], None, False, None, None
    in_table = False
    for no, line in enumerate(text.split("\n"), 1):
        if line.startswith("```"):
            fence = not fence
        if fence or line.startswith("```"):
            in_table = False
            continue
        if BEGIN.match(line):
            if block:
                errors.append("%s:%d: block %s begins inside block %s" %
                              (path, no, BEGIN.match(line).group(1), block[0]))
            block = (BEGIN.match(line).group(1), no)
        elif END.match(line):
            name = END.match(line).group(1)
            if not block or block[0] != name:
                errors.append("%s:%d: end of block %s without its begin" % (path, no, name))
            block = None
        table_line = line.startswith("|")
        if table_line and not in_table and not block:
            if last is None or not STATIC.match(last[1]):
                errors.append("%s:%d: a table outside any generated block and without a "
                              "<!-- static: reason --> mark before it: %s" % (path, no, line[:60]))
            elif not STATIC.match(last[1]).group(1):
                errors.append("%s:%d: the static mark gives no reason" % (path, last[0]))
            static_line = None
        in_table = table_line
        if line.strip():
            if static_line is not None:
                errors.append("%s:%d: a static mark not followed by a table" % (path, static_line))
                static_line = None
            if STATIC.match(line):
                static_line = no
            last = (no, line)
    if block:
        errors.append("%s:%d: block %s never ends" % (path, block[1], block[0]))
    if static_line is not None:
        errors.append("%s:%d: a static mark not followed by a table" % (path, static_line))
    return errors


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--doc", default=os.path.join(ROOT, "docs", "evaluation.md"))
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    args = p.parse_args()
    with open(args.doc) as fh:
        text = fh.read()
    failures = placement_errors(text, os.path.relpath(args.doc, ROOT))
    blocks = len(re.findall(r"^<!-- generated:[a-z0-9-]+ begin -->$", text, re.M))
    statics = len(re.findall(r"^<!-- static:", text, re.M))

    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "evaluation.md")
        shutil.copy(args.doc, copy)
        r = subprocess.run([os.path.join(ROOT, "scripts", "evaluate"), "--tables-only",
                            "--results", args.results, "--doc", copy],
                           capture_output=True, text=True, timeout=60)
        with open(copy) as fh:
            rendered = fh.read()
    if r.returncode != 0:
        failures.append("scripts/evaluate --tables-only failed (exit %d):\n%s" %
                        (r.returncode, r.stderr.strip()))
    if rendered != text:
        diff = "".join(difflib.unified_diff(text.splitlines(True), rendered.splitlines(True),
                                            "docs/evaluation.md", "rendered from the JSON", n=1))
        failures.append("the document's generated blocks differ from what their JSON renders "
                        "(run scripts/evaluate --tables-only, or rerun the step):\n" + diff[:6000])
    for f in failures:
        print("FAIL: " + f)
    if failures:
        return 1
    print("ok: %d generated blocks reproduce from their JSON; every table is in one or after "
          "one of %d static marks" % (blocks, statics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
