#!/usr/bin/env python3
"""Checks that including a header costs no code: the object of each header's translation unit
(tests/headers/, which includes one header and calls nothing) defines no function. A function
there is compiled, and kept in the object at -O0, in every file of a user's program that
includes the header, called or not.

Usage: header_code_check.py NM OBJECT... (an argument may hold several objects, separated by
';', as CMake's $<TARGET_OBJECTS> gives them). Prints each function found and exits 1 if any."""

import re
import subprocess
import sys

# nm's letters for code: global, local and weak text.
CODE = {"T", "t", "W", "w"}
# Not the headers' code: <valgrind/valgrind.h>'s own static functions, there only where
# RINGIO_VALGRIND opts in, and what a sanitizer adds to every unit (asan.module_ctor, ...).
NOT_THE_HEADERS = re.compile(r"VALGRIND_PRINTF(_BACKTRACE)?\(|\w+\.module_[cd]tor")


def functions(nm, path):
    listing = subprocess.run([nm, "--defined-only", "--demangle", path], capture_output=True,
                             text=True, check=True).stdout
    found = []
    for line in listing.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in CODE and not NOT_THE_HEADERS.match(parts[2]):
            found.append(parts[2])
    return found


def main():
    nm = sys.argv[1]
    objects = [path for argument in sys.argv[2:] for path in argument.split(";") if path]
    if not objects:
        print("no objects given")
        return 1
    problems = 0
    for path in objects:
        for name in functions(nm, path):
            print(f"{path}: defines {name[:200]}")
            problems += 1
    print(f"{len(objects)} header units, {problems} functions defined")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
