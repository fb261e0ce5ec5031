#!/usr/bin/env python3
"""Checks that each example stays as short as the classic program it retells: at most 70 lines
(the C programs they retell are 50 to 70), echo_server, the fast-path showcase, at most 120, and
kv_server, the whole server of docs/getting-started.md, and work_server, which has two processes,
at most 120; tcp_server, which also gathers the farewells a stop makes into one write, at most 85.

Usage: example_length_check.py REPO_ROOT. Prints each example over its budget and exits 1 if any."""

import pathlib
import sys

LONGER = {"echo_server.cpp": 120, "kv_server.cpp": 120, "work_server.cpp": 120,
          "tcp_server.cpp": 85}
DEFAULT = 70


def main():
    examples = pathlib.Path(sys.argv[1]) / "examples"
    sources = sorted(examples.glob("*.cpp"))
    if not sources:
        print(f"no examples under {examples}")
        return 1
    over = []
    for source in sources:
        lines = len(source.read_text().splitlines())
        budget = LONGER.get(source.name, DEFAULT)
        if lines > budget:
            over.append(f"{source.name}: {lines} lines, more than its {budget}")
    for line in over:
        print(line)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
