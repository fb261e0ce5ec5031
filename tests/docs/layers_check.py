#!/usr/bin/env python3
"""Checks the layers of include/ringio/: a header under detail/ includes no public header, every
header opens with one line saying what it is (a comment right after `#pragma once`), and every
header is in the library's header set in CMakeLists.txt, which is what gets installed.

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
    listed = (pathlib.Path(sys.argv[1]) / "CMakeLists.txt").read_text()
    for header in headers:
        text = header.read_text()
        name = header.relative_to(root.parent)
        if header.parent.name == "detail":
            for match in PUBLIC_INCLUDE.finditer(text):
                problems.append(f"{name}: a detail header includes a public one: {match.group(0).strip()}")
        if f"include/{name}" not in listed:
            problems.append(f"{name}: not in the header set of CMakeLists.txt, so not installed")
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2 or lines[0] != "#pragma once" or not lines[1].lstrip().startswith("//"):
            problems.append(f"{name}: does not open with a line saying what it is")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
