"""compile: compile time of each server's source file on its own, timed by hyperfine, and the
weight of the headers (their lines, the public types) that the suite bounds too."""

import importlib.util
import json
import os
import shlex
import subprocess
from pathlib import Path

from ..core import BENCH, ROOT, SERVER_CPU, BenchError, log, relative
from ..fmt import fmt_ratio, verdict

NAME = "compile"
TARGET_RATIO = 0.40
ASIO = "Asio echo (epoll)"
EXAMPLE = "ringio echo_server"
PEER_PROGRAM = "ringio, the Asio peer's program"
TARGET_HEADER_LINES = 4500
TARGET_PUBLIC_TYPES = 30
TARGET_OPERATION_LINES = 30


def shape():
    """The suite's own count (tests/docs/api_shape.py), so that the two never disagree."""
    spec = importlib.util.spec_from_file_location("api_shape", ROOT / "tests" / "docs" / "api_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measured = module.measure(ROOT)
    return {"header_lines": measured["header_lines"], "headers": measured["headers"],
            "largest_header": measured["largest_header"], "public_types": measured["public_types"],
            "max_header_lines": module.MAX_HEADER_LINES,
            "operations": len(measured["operations"]),
            "largest_operation": measured["largest_operation"]}


def units():
    cxx = os.environ.get("CXX", "g++")
    cc = os.environ.get("CC", "cc")
    flags = ["-O2", "-DNDEBUG"]
    ringio = [cxx, "-std=c++20", *flags, "-I", ROOT / "include", "-c"]
    asio = [cxx, "-std=c++20", *flags, "-c"]
    return cxx, [
        (EXAMPLE, ringio + [ROOT / "examples" / "echo_server.cpp"]),
        # The Asio peer's program, no more, in ringio: the example does more than the peer.
        (PEER_PROGRAM, ringio + [BENCH / "ringio_echo.cpp"]),
        (ASIO, asio + [BENCH / "asio_echo.cpp"]),
        ("Asio echo (io_uring)", asio[:-1] + ["-DASIO_HAS_IO_URING", "-DASIO_DISABLE_EPOLL", "-c",
                                             BENCH / "asio_echo.cpp"]),
        ("raw liburing (C)", [cc, "-std=gnu11", *flags, "-c", BENCH / "raw_uring_echo.c"]),
        ("epoll (C)", [cc, "-std=gnu11", *flags, "-c", BENCH / "epoll_echo.c"]),
    ]


def run(ctx):
    """Every command of the part, and beside each C++ unit's full compile the front end alone
    (-fsyntax-only: preprocessing, parsing, template instantiation, no code generation; the part
    of the time that the headers decide) and code generation without optimisation (-O0: what the
    amount of code alone costs). hyperfine runs each cfg.compile_reps times, pinned to one CPU;
    the figure is the fastest run: a compile does the same work every time, and whatever else the
    host runs (which the guest cannot always see) only ever slows it down."""
    cfg = ctx.cfg
    cxx, all_units = units()
    if cfg.quick:
        all_units = [u for u in all_units if u[0] != "Asio echo (io_uring)"]
    out = str(Path(ctx.tmp) / "unit.o")
    jobs = []
    for name, argv in all_units:
        argv = [str(a) for a in argv] + ["-o", out]
        jobs.append((name, "seconds", argv))
        if argv[0] == cxx:
            jobs.append((name, "front_end_seconds",
                         [a for a in argv[:-2] if a not in ("-c", "-O2")] + ["-fsyntax-only"]))
            jobs.append((name, "o0_seconds", ["-O0" if a == "-O2" else a for a in argv]))
    export = Path(ctx.tmp) / "hyperfine.json"
    command = ["hyperfine", "--shell=none", "--runs", str(cfg.compile_reps), "--style", "basic",
               "--export-json", str(export)]
    for _, _, argv in jobs:
        command.append(shlex.join(["taskset", "-c", str(SERVER_CPU)] + argv))
    log(f"compile: {len(jobs)} commands, {cfg.compile_reps} runs each, through hyperfine")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"hyperfine failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    measured = json.loads(export.read_text())["results"]
    results = {}
    for (name, key, argv), timing in zip(jobs, measured):
        entry = results.setdefault(name, {})
        entry[key] = timing["min"]
        entry.setdefault("rounds", {})[key] = timing["times"]
        if key == "seconds":
            shown = [relative(a) for a in argv]
            shown[-1] = "x.o"
            entry["command"] = shlex.join(shown)
        log(f"compile {name} {key}: {timing['min']:.2f} s (fastest of {len(timing['times'])})")
    return {"reps": cfg.compile_reps, "cpu": SERVER_CPU, "units": results, "shape": shape()}


def targets(res, ctx):
    target = f"compile time of the echo server <= {TARGET_RATIO:.2f}x Asio's"
    comp = res.get(NAME, {}).get("units", {})
    if ASIO not in comp:
        return [(target, "not measured in this run", "")]
    asio = comp[ASIO]["seconds"]
    v = comp[EXAMPLE]["seconds"]
    rows = [(target, f"{v:.2f} s, {v / asio:.2f}x Asio's: {verdict(v <= asio * TARGET_RATIO)}",
             f"Asio {asio:.2f} s, so at most {asio * TARGET_RATIO:.2f} s")]
    weight = res[NAME].get("shape")
    if weight:
        name, largest = weight["largest_header"]
        lines = weight["header_lines"]
        fits = lines <= TARGET_HEADER_LINES and largest <= weight["max_header_lines"]
        rows.append((f"headers <= {TARGET_HEADER_LINES:,} lines in all, each <= "
                     f"{weight['max_header_lines']}",
                     f"{lines:,} lines in {weight['headers']} headers, the largest {largest} "
                     f"({name}): {verdict(fits)}", ""))
        types = len(weight["public_types"])
        rows.append((f"<= {TARGET_PUBLIC_TYPES} public types", f"{types}: "
                     f"{verdict(types <= TARGET_PUBLIC_TYPES)}", ""))
        if "largest_operation" in weight:
            where, longest = weight["largest_operation"]
            rows.append((f"every operation's own code <= {TARGET_OPERATION_LINES} lines",
                         f"{weight['operations']} types that prepare a request, the longest {longest} lines "
                         f"(`{where}`): {verdict(longest <= TARGET_OPERATION_LINES)}", ""))
    return rows


def report(res, ctx):
    comp = res[NAME]
    unit = comp["units"]
    asio = unit[ASIO]["seconds"]
    seconds = lambda v, key: f"{v[key]:.2f}" if key in v else ""
    rows = [[name, f"{v['seconds']:.2f}", fmt_ratio(v["seconds"] / asio),
             seconds(v, "front_end_seconds"), seconds(v, "o0_seconds"), f"`{v['command']}`"]
            for name, v in unit.items()]
    example, peer = unit[EXAMPLE], unit[PEER_PROGRAM]
    return {"reps": comp["reps"], "cpu": comp["cpu"], "rows": rows, "asio": asio,
            "example": example, "peer": peer, "target": TARGET_RATIO, "shape": comp.get("shape")}
