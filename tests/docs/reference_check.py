#!/usr/bin/env python3
"""Checks that docs/reference.md is complete: every public entity that a header under
include/ringio/ documents with a `///` comment is named in that header's section of the page.

Usage: reference_check.py REPO_ROOT. Prints each entity the page leaves out and exits 1 if any."""

import pathlib
import re
import sys

# The name a declaration introduces, tried in order on the first line after a `///` block.
PATTERNS = [
    re.compile(r"^\s*(?:template\s*<.*>\s*)?(?:class|struct|concept)\s+(?:\[\[\w+\]\]\s+)?(\w+)"),
    re.compile(r"^\s*enum\s+class\s+(\w+)"),
    re.compile(r"^\s*using\s+(\w+)\s*="),
    re.compile(r"^\s*#\s*define\s+(\w+)"),
    re.compile(r"\b(operator\s*(?:==|<=>|\*|->|\[\]|bool|co_await))\s*\("),
    re.compile(r"([A-Za-z_]\w*)\s*\("),  # a function: the identifier before the first '('
    re.compile(r"^\s*(?:[\w:<>,\s*&]+\s)?([A-Za-z_]\w*)\s*(?:=|;|\{|\[)"),  # a member or constant
]
SKIP_WORDS = {"explicit", "inline", "static", "constexpr", "requires", "noexcept", "template",
              "return", "decltype", "sizeof", "alignof", "if"}


def declared_name(line):
    for pattern in PATTERNS:
        for match in pattern.finditer(line):
            name = match.group(1)
            if name not in SKIP_WORDS:
                return name
    return None


def public_entities(header):
    """(name, line number) of each `///`-documented declaration outside namespace detail."""
    lines = header.read_text().splitlines()
    entities = []
    in_detail = 0
    depth = 0
    detail_depths = []
    pending_doc = False
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if re.match(r"namespace\s+(ringio::)?detail\b", stripped):
            detail_depths.append(depth)
        if stripped.startswith("///"):
            pending_doc = True
        elif pending_doc and stripped and not stripped.startswith("//"):
            if not detail_depths and not stripped.startswith("template"):
                name = declared_name(stripped)
                if name:
                    entities.append((name, number))
            if not stripped.startswith("template"):
                pending_doc = False
        code = re.sub(r'"(\\.|[^"\\])*"', '""', line.split("//")[0])
        depth += code.count("{") - code.count("}")
        while detail_depths and depth <= detail_depths[-1] and "}" in code:
            detail_depths.pop()
    return entities


def sections(reference):
    """The text of each `## header.hpp` section of the page, by header name."""
    result = {}
    current = None
    for line in reference.read_text().splitlines():
        heading = re.match(r"^## `?([\w/]+\.hpp)`?\s*$", line)
        if heading:
            current = heading.group(1)
            result[current] = []
        elif line.startswith("## "):
            current = None
        elif current:
            result[current].append(line)
    return {name: "\n".join(text) for name, text in result.items()}


def main():
    root = pathlib.Path(sys.argv[1])
    page = sections(root / "docs" / "reference.md")
    missing = []
    for header in sorted((root / "include" / "ringio").glob("*.hpp")):
        name = header.name
        if name not in page:
            missing.append(f"{name}: no section '## {name}' in docs/reference.md")
            continue
        text = page[name]
        for entity, number in public_entities(header):
            if not re.search(r"(?<![\w])" + re.escape(entity).replace(r"\ ", r"\s*") + r"(?![\w])",
                             text):
                missing.append(f"{name}:{number}: '{entity}' is not in its section")
    for line in missing:
        print(line)
    print(f"reference_check: {len(missing)} public entities missing from docs/reference.md")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
