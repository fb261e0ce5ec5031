#!/usr/bin/env python3
"""The size of the library's surface, counted from its headers: the lines of every header, the
public types (each class, struct, union, enum or alias defined directly in namespace ringio; a
nested type belongs to its owner, and detail:: is not public), the lines of code of each operation
(a type that prepares an SQE, or a multishot policy), and the `///` comments longer than MAX_DOC_LINES (the
full contract lives in docs/reference.md, once).

Usage: api_shape.py REPO_ROOT [--check]. Prints the figures as JSON; with --check, also prints
each limit exceeded and exits 1 if any."""

import json
import pathlib
import re
import sys

MAX_HEADER_LINES = 400
MAX_PUBLIC_TYPES = 30
MAX_DOC_LINES = 2
MAX_OPERATION_LINES = 30

# A quote after a digit is a digit separator (4'096), not a character.
COMMENT_OR_TEXT = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|(?<!\w)\'(?:\\.|[^\'\\\n])*\'',
                             re.S)
TOKEN = re.compile(r'namespace\s+([A-Za-z_][\w:]*)\s*\{|[{};]')
TYPE = re.compile(r'(?:^|[;}>\s])(?:class|struct|union|enum(?:\s+class)?)\s+(?:\[\[[^\]]*\]\]\s*)*([a-z_]\w*)'
                  r'(?:\s+final)?\s*(?::[^;{]*)?\{|\busing\s+([a-z_]\w*)\s*=')


def public_types_of(text):
    """The names of the types `text` defines directly in namespace ringio."""
    code = COMMENT_OR_TEXT.sub(lambda m: " " if m.group(0).startswith("/") else '""', text)
    scopes, names, start = [], [], 0
    for match in TOKEN.finditer(code):
        if scopes == ["ringio"]:
            # The text since the last scope change or statement, up to and including this token.
            for found in TYPE.finditer(code[start:match.end()]):
                names.append(found.group(1) or found.group(2))
        if match.group(1):
            scopes.append(match.group(1))  # one scope, closed by one brace: "ringio::detail"
        elif match.group(0) == "{":
            scopes.append("{")
        elif match.group(0) == "}" and scopes:
            scopes.pop()
        start = match.end()
    return names


OPERATION = re.compile(r'\bprepare\(io_uring_sqe\*|\bstruct multishot_policy<')
TYPE_HEAD = re.compile(r'\b(?:class|struct)\s+(?:\[\[[^\]]*\]\]\s*)*(\w+)(?:<[^;{]*>)?\s*(?::[^;{()]*)?\{')


def operations_of(text):
    """Each operation `text` defines, as (name, first line, lines): the innermost class or struct
    around each `prepare(io_uring_sqe*`, and each multishot_policy specialization, from its head
    to its closing brace, counting the lines that hold code (not blank, not only a comment)."""
    # Comments and literals blanked to the same length, so that offsets still give line numbers.
    code = COMMENT_OR_TEXT.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text)
    spans = []
    for head in TYPE_HEAD.finditer(code):
        depth, end = 0, head.end() - 1
        for end in range(head.end() - 1, len(code)):
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            if depth == 0:
                break
        spans.append((head.start(), end, head.group(1)))
    found = {}
    for use in OPERATION.finditer(code):
        around = [span for span in spans if span[0] <= use.start() <= span[1]]
        if around:
            start, end, name = max(around, key=lambda span: span[0])
            first = code.count("\n", 0, start) + 1
            found[(name, first)] = sum(1 for line in code[start:end + 1].splitlines()
                                       if line.strip())
    return [(name, first, count) for (name, first), count in sorted(found.items())]


def long_doc_comments(lines):
    """The first line number of each run of `///` lines longer than MAX_DOC_LINES."""
    found, run = [], 0
    for number, line in enumerate(lines + [""], start=1):
        if line.lstrip().startswith("///"):
            run += 1
        else:
            if run > MAX_DOC_LINES:
                found.append(number - run)
            run = 0
    return found


def measure(root):
    include = pathlib.Path(root) / "include" / "ringio"
    headers = sorted(include.rglob("*.hpp"))
    lines = {str(h.relative_to(include.parent)): len(h.read_text().splitlines()) for h in headers}
    long_docs = [f"{h.relative_to(include.parent)}:{n}" for h in headers
                 for n in long_doc_comments(h.read_text().splitlines())]
    operations = {f"{h.relative_to(include.parent)}:{first} {name}": count for h in headers
                  for name, first, count in operations_of(h.read_text())}
    types = set()
    for header in headers:
        if header.parent.name != "detail":
            types.update(public_types_of(header.read_text()))
    return {"header_lines": sum(lines.values()), "headers": len(lines),
            "largest_header": max(lines.items(), key=lambda item: item[1]),
            "lines": lines, "public_types": sorted(types), "long_doc_comments": long_docs,
            "largest_operation": max(operations.items(), key=lambda item: item[1]),
            "operations": operations}


def main():
    shape = measure(sys.argv[1])
    print(json.dumps({k: v for k, v in shape.items() if k not in ("lines", "operations")}))
    if "--check" not in sys.argv[2:]:
        return 0
    problems = [f"{name}: {count} lines, more than {MAX_HEADER_LINES}"
                for name, count in shape["lines"].items() if count > MAX_HEADER_LINES]
    problems += [f"{where}: {count} lines, more than {MAX_OPERATION_LINES} for an operation"
                 for where, count in shape["operations"].items() if count > MAX_OPERATION_LINES]
    if len(shape["public_types"]) > MAX_PUBLIC_TYPES:
        problems.append(f"{len(shape['public_types'])} public types, more than {MAX_PUBLIC_TYPES}")
    problems += [f"{where}: a /// comment of more than {MAX_DOC_LINES} lines (the contract goes "
                 "to docs/reference.md, a why to a // comment)" for where in shape["long_doc_comments"]]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
