#!/usr/bin/env python3
"""Keeps the C++ in docs/getting-started.md true to the code. A ```cpp block whose first line is
`// examples/NAME.cpp` must be that file, byte for byte; every other block must be a whole
program, and compiles (syntax and types, no link) with the compiler and flags given.

Usage: snippets_check.py REPO_ROOT COMPILER [FLAG...]. Prints what differs or fails; exits 1."""

import pathlib
import re
import subprocess
import sys
import tempfile

BLOCK = re.compile(r"^```cpp\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE = re.compile(r"^// (examples/\w+\.cpp)\n")


def main():
    root = pathlib.Path(sys.argv[1])
    compiler = sys.argv[2:]
    page = root / "docs" / "getting-started.md"
    failures = []
    blocks = BLOCK.findall(page.read_text())
    if not blocks:
        failures.append(f"{page}: no ```cpp block")
    for number, code in enumerate(blocks, 1):
        what = f"{page.name}, C++ block {number}"
        named = FILE.match(code)
        if named:
            path = root / named.group(1)
            if not path.is_file():
                failures.append(f"{what}: {named.group(1)} does not exist")
            elif path.read_text() != code[named.end():]:
                failures.append(f"{what}: differs from {named.group(1)}")
            continue
        if "int main(" not in code:
            failures.append(f"{what}: neither a whole program nor a copy of an example")
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".cpp") as source:
            source.write(code)
            source.flush()
            result = subprocess.run(
                compiler + ["-fsyntax-only", f"-I{root / 'include'}", source.name],
                capture_output=True, text=True)
            if result.returncode != 0:
                failures.append(f"{what} does not compile:\n{result.stderr}")
    for failure in failures:
        print(failure)
    print(f"{len(blocks)} blocks checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
