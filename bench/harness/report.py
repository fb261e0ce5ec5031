"""docs/performance.md from bench/templates/, and its chart."""

import textwrap
from pathlib import Path

from .core import BENCH, ROOT

# The unit tests that check "no heap allocation per operation", which bench/run cannot measure.
ALLOCATION_TESTS = [
    ("operation: no heap allocation per operation", "tests/operation_test.cpp"),
    ("accept: steady state allocates nothing", "tests/tcp_listener_test.cpp"),
    ("read and write: steady state allocates nothing, over TCP and a Unix stream",
     "tests/tcp_stream_test.cpp"),
    ("receive: steady state allocates nothing", "tests/tcp_stream_test.cpp"),
    ("send: steady state allocates nothing", "tests/tcp_stream_test.cpp"),
    ("receive_from: steady state allocates nothing", "tests/udp_socket_test.cpp"),
]


def allocation_target():
    """The row of the allocation target: the unit tests that keep it, as long as all exist."""
    found = []
    for name, file in ALLOCATION_TESTS:
        path = ROOT / file
        if not path.exists() or f'TEST_CASE("{name}"' not in path.read_text(errors="replace"):
            return ("no heap allocation per operation", "no unit test checks it yet", "")
        found.append(f"`{name}` ({file})")
    listed = ", ".join(found[:-1]) + " and " + found[-1]
    return ("no heap allocation per operation",
            f"not measured here: checked by the unit tests {listed}, which count heap allocations "
            "in steady state (run by `scripts/test`)", "")


def wrap(text, width=100):
    """A paragraph filled to the report's width, ending with its newline."""
    return textwrap.fill(" ".join(text.split()), width, break_on_hyphens=False,
                         break_long_words=False) + "\n"


def provenance(updates):
    """The runs that measured the figures shown: each part under the last run that measured it,
    and a run whose parts were all measured again later left out."""
    seen = set()
    shown = []
    for u in reversed(updates):
        left = [p for p in u["parts"] if p not in seen]
        seen.update(u["parts"])
        if left:
            shown.append(dict(u, parts=left))
    return shown[::-1]


def render(res, ctx, parts, targets, out_md):
    # Imported here: bench/run installs python3-jinja2 before it gets this far.
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(BENCH / "templates"),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["wrap"] = wrap
    # Each part's section on its own, so that every one ends alike whatever its last line.
    sections = [env.get_template(f"{part.NAME}.md.j2").render(
                    p=part.report(res, ctx), res=res, cfg=ctx.cfg, png=ctx.png_name).strip()
                for part in parts if part.NAME in res]
    rows = []
    for part in targets:
        rows += part.targets(res, ctx)
    rows.insert(3, allocation_target())
    text = env.get_template("performance.md.j2").render(
        res=res, cfg=ctx.cfg, sections=sections, targets=rows, png=ctx.png_name,
        updates=provenance(res.get("updates", [])))
    Path(out_md).parent.mkdir(parents=True, exist_ok=True)
    Path(out_md).write_text(text)
