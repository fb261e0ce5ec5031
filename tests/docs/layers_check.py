#!/usr/bin/env python3
"""Checks the layers of include/ringio/: a header under detail/ includes no public header, and
every header opens with one line saying what it is (a comment right after `#pragma once`).

Usage: layers_check.py REPO_ROOT. Prints each violation and exits 1 if any."""

import pathlib
import re
import sys

PUBLIC_INCLUDE = re.compile(r'^\s*#\s*include\s*<ringio/(?!detail/)[^>]+>', re.M)


def main():
    root = pathlib.Path(sys.argv[1]) / "include" / "ringio"
    headers = sorted(root.rglob("*.hpp"))
    if not headers:
        print(f"no headers under {root}")
        return 1
    problems = []
    for header in headers:
        text = header.read_text()
        name = header.relative_to(root.parent)
        if header.parent.name == "detail":
            for match in PUBLIC_INCLUDE.finditer(text):
                problems.append(f"{name}: a detail header includes a public one: {match.group(0).strip()}")
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2 or lines[0] != "#pragma once" or not lines[1].lstrip().startswith("//"):
            problems.append(f"{name}: does not open with a line saying what it is")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
