"""bench/run: settings, the build, the order of the parts, results.json and the report."""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from . import core, parts, report
from .core import BENCH, BUILD, ROOT, BenchError, Server, ServerRun, load_argv, log, run_load
from .servers import ringio_binaries

PACKAGES = ["g++", "cmake", "ninja-build", "pkg-config", "liburing-dev", "libasio-dev",
            "valgrind", "sockperf", "gnuplot-nox", "strace", "util-linux", "hyperfine",
            "python3-jinja2", "libboost-dev", "linux-perf"]

# Sizes: the full run, and what --quick changes.
FULL = dict(rounds=5, seconds=3.0, warmup=1.0, callgrind_counts=(20000, 40000), callgrind_reps=5,
            callgrind_warmup=1.0, callgrind_seconds=4.0, idle_connections=10000,
            close_idle=15000, close_seconds=3.0, stop_connections=16000, stop_timeout=60.0,
            stall_peers=1000, stall_echoes=50, stall_timeout=10.0, compile_reps=5,
            mapped_bytes=1 << 30, mapped_reads=2_000_000, mapped_cold_reads=20_000)
QUICK = dict(rounds=1, seconds=1.0, warmup=0.5, callgrind_counts=(5000, 10000), callgrind_reps=1,
             callgrind_warmup=0.5, callgrind_seconds=1.0, idle_connections=1000,
             close_idle=2000, close_seconds=1.0, stop_connections=2000, stop_timeout=20.0,
             stall_peers=200, stall_echoes=20, stall_timeout=2.0, compile_reps=1,
             mapped_bytes=64 << 20, mapped_reads=200_000, mapped_cold_reads=2_000,
             quiet_timeout=3.0, quiet_budget=10.0, attempts=1)
SAVED = sorted(set(FULL) | {"target_rounds", "attempts", "foreign_limit", "evict"})


def measuring_settings():
    """The full run's sizes, and how a timed run waits for a quiet machine and is repeated,
    from the environment (bench/pair takes them too)."""
    env = os.environ
    cfg = types.SimpleNamespace(**FULL)
    cfg.quiet_timeout = float(env.get("RINGIO_BENCH_QUIET_TIMEOUT", 10))
    cfg.quiet_budget = float(env.get("RINGIO_BENCH_QUIET_BUDGET", 300))
    cfg.attempts = int(env.get("RINGIO_BENCH_ATTEMPTS", 3))
    cfg.foreign_limit = float(env.get("RINGIO_BENCH_FOREIGN_LIMIT", 0.5))
    return cfg


def settings(argv=None):
    env = os.environ
    p = argparse.ArgumentParser(prog="bench/run", description=sys.modules["__main__"].__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="every part at a small size")
    p.add_argument("--rounds", type=int, default=env.get("RINGIO_BENCH_ROUNDS"))
    p.add_argument("--seconds", type=float, default=env.get("RINGIO_BENCH_SECONDS"))
    p.add_argument("--warmup", type=float, default=env.get("RINGIO_BENCH_WARMUP"))
    p.add_argument("--parts", default=",".join(parts.NAMES))
    p.add_argument("--ringio-examples", default=env.get("RINGIO_EXAMPLES_DIR", ""))
    p.add_argument("--output", default=None, help="markdown file to write")
    p.add_argument("--results", default=None, help="JSON file of raw figures to write (or read)")
    p.add_argument("--merge", action="store_true",
                   help="keep the other parts' figures from --results, replace only these parts'")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite the report and chart from --results without measuring")
    given = p.parse_args(argv)
    cfg = measuring_settings()
    cfg.evict = env.get("RINGIO_BENCH_EVICT", "fadvise")
    if cfg.evict not in ("fadvise", "drop_caches"):
        p.error(f"RINGIO_BENCH_EVICT must be fadvise or drop_caches, not {cfg.evict}")
    if given.quick:
        vars(cfg).update(QUICK)
    for key in ("rounds", "seconds", "warmup"):
        if getattr(given, key) is not None:
            setattr(cfg, key, type(FULL[key])(getattr(given, key)))
    cfg.target_rounds = 1 if given.quick else 3 * cfg.rounds
    cfg.quick = given.quick
    cfg.report_only = given.report_only
    cfg.merge = given.merge
    cfg.parts = [name for name in parts.NAMES if name in given.parts.split(",")]
    unknown = set(given.parts.split(",")) - set(parts.NAMES)
    if unknown:
        p.error(f"unknown parts: {', '.join(sorted(unknown))}")
    quick_dir = BUILD / "quick"
    cfg.output = Path(given.output or (quick_dir / "performance.md" if given.quick
                                       else ROOT / "docs" / "performance.md")).resolve()
    # The full run's raw figures sit beside the report, in the repository, so that --merge and
    # --report-only work from any clone.
    cfg.results = Path(given.results or (quick_dir / "results.json" if given.quick
                                         else cfg.output.with_suffix(".json"))).resolve()
    cfg.ringio_examples = (str(Path(given.ringio_examples).resolve()) if given.ringio_examples
                           else "")
    return cfg


def build(cfg):
    deps = f'source "{ROOT}/scripts/deps.sh" && ringio_require {" ".join(PACKAGES)}'
    subprocess.run(["bash", "-c", deps], check=True)
    configure = ["cmake", "-S", str(BENCH), "-B", str(BUILD), "-G", "Ninja",
                 "-DCMAKE_BUILD_TYPE=Release", f"-DRINGIO_EXAMPLES_DIR={cfg.ringio_examples}"]
    for argv in (configure, ["cmake", "--build", str(BUILD)]):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{shlex.join(argv)} failed:\n{done.stdout}\n{done.stderr}")


def machine():
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    asio = "unknown"
    version = Path("/usr/include/asio/version.hpp")
    if version.exists():
        m = re.search(r"ASIO_VERSION \d+ // ([0-9.]+)", version.read_text())
        asio = m.group(1) if m else asio
    virt = "none reported"
    m = re.search(r"Hypervisor vendor:\s*(.+)",
                  subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    if m:
        virt = f"{m.group(1).strip()} guest"
    return {
        "kernel": " ".join(platform.uname()[i] for i in (0, 2, 4)),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "virtualisation": virt,
        "compiler": first_line([os.environ.get("CXX", "g++"), "--version"]),
        "liburing": first_line(["pkg-config", "--modversion", "liburing"]),
        "asio": asio,
        "valgrind": first_line(["valgrind", "--version"]),
        "sockperf": first_line(["sockperf", "--version"]),
        "hyperfine": first_line(["hyperfine", "--version"]),
    }


def backend_check(ctx):
    """Confirms with strace which system calls each Asio build waits in."""
    results = {}
    for name, binary in (("Asio epoll", "asio_echo_epoll"), ("Asio io_uring", "asio_echo_uring")):
        out = Path(ctx.tmp) / f"strace.{binary}"
        wrapper = ["strace", "-f", "-c", "-o", out,
                   "-e", "trace=io_uring_enter,epoll_wait,epoll_pwait"]
        with ServerRun(Server(name, [BUILD / binary, "{port}"]), ctx.logdir, wrapper) as run:
            run_load(load_argv("rate", run.port, "--connections", 10, "--round-trips", 2000), 60)
        counts = {}
        for line in out.read_text().splitlines():
            fields = line.split()
            if fields and fields[-1] in ("io_uring_enter", "epoll_wait", "epoll_pwait"):
                counts[fields[-1]] = int(fields[3])  # % time, seconds, usecs/call, calls
        results[name] = counts
        log(f"backend {name}: {counts}")
    uring = results["Asio io_uring"]
    if uring.get("io_uring_enter", 0) == 0 or uring.get("epoll_wait", 0) + uring.get(
            "epoll_pwait", 0) > 0:
        raise BenchError(f"asio_echo_uring does not run on io_uring: {uring}")
    return results


def write(res, ctx):
    """The chart and the report, from `res`."""
    if "tcp" in res:
        parts.tcp.chart(res["tcp"], ctx.cfg.output.parent / ctx.png_name, ctx.tmp)
    report.render(res, ctx, parts.PARTS, parts.TARGETS, ctx.cfg.output)
    log(f"wrote {ctx.cfg.output} (raw figures in {ctx.cfg.results})")


def main():
    cfg = settings()
    ctx = types.SimpleNamespace(cfg=cfg, png_name="performance-tcp.png", logdir=BUILD / "logs")
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    if cfg.report_only:
        res = json.loads(cfg.results.read_text())
        vars(cfg).update(res["settings"])
        with tempfile.TemporaryDirectory(prefix="ringio-bench-") as ctx.tmp:
            write(res, ctx)
        return
    signal.signal(signal.SIGINT, lambda signum, _: (core.kill_all(), sys.exit(128 + signum)))
    signal.signal(signal.SIGTERM, lambda signum, _: (core.kill_all(), sys.exit(128 + signum)))
    core.raise_descriptor_limit()
    log(f"building bench/ into {BUILD.relative_to(ROOT)}")
    build(cfg)
    ctx.ringio = ringio_binaries()
    ctx.logdir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "bench/run" + "".join(f" {a}" for a in sys.argv[1:])
    res = {"date": now, "command": command, "machine": machine(),
           "settings": {key: getattr(cfg, key) for key in SAVED}}
    if cfg.merge:
        # The other parts' figures stay as measured; the report says which parts are newer.
        res = json.loads(cfg.results.read_text())
        # The host's kernel may have changed since: its build is one sign that the machine did.
        res.setdefault("updates", []).append({"date": now, "command": command,
                                              "parts": cfg.parts,
                                              "kernel": machine()["kernel"]})
    with tempfile.TemporaryDirectory(prefix="ringio-bench-") as ctx.tmp:
        res["backend"] = backend_check(ctx)
        for part in parts.PARTS:
            if part.NAME in cfg.parts:
                res[part.NAME] = part.run(ctx)
        # A merge adds its timed runs to the full run's: the report speaks of every figure in it.
        noise = res.get("noise", {}) if cfg.merge else {}
        res["noise"] = {key: noise.get(key, type(value)()) + value
                        for key, value in core.NOISE.items()}
        cfg.results.parent.mkdir(parents=True, exist_ok=True)
        cfg.results.write_text(json.dumps(res, indent=2, default=str))
        write(res, ctx)


def entry():
    try:
        main()
    except BenchError as e:
        core.kill_all()
        print(f"bench: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        core.kill_all()
