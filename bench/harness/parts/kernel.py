"""kernel: what each server asks of the kernel per round trip, where the bound on a connection's
buffers is paid (500 x 4096 B) and at the target point (50 x 128 B): system calls, requests,
completions and poll arms (perf's io_uring tracepoints), and the server's CPU time."""

import signal
import subprocess
import time

from ..core import (BenchError, Load, ServerRun, load_argv, log, median, ratios, rotate,
                    spawn)
from ..servers import REFERENCE, bound_servers

NAME = "kernel"
POINTS = [(500, 4096), (50, 128)]
ATTACH_SECONDS = 1.0
# perf's event, and the name the figures go by.
EVENTS = {"syscalls:sys_enter_io_uring_enter": "enters", "io_uring:io_uring_submit_req": "requests",
          "io_uring:io_uring_complete": "completions", "io_uring:io_uring_poll_arm": "poll_arms",
          "task-clock": "cpu_ms"}


def perf_argv(*target):
    return ["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), *target]


def unavailable():
    """Why perf cannot count the events here (not installed, no tracefs, no permission), or
    None."""
    try:
        done = subprocess.run(perf_argv("--", "true"), capture_output=True, text=True)
    except FileNotFoundError:
        return "perf is not installed (Debian's linux-perf)"
    if done.returncode != 0 or "<not supported>" in done.stderr:
        return f"perf cannot count {', '.join(EVENTS)}: {done.stderr.strip()[-300:]}"
    return None


def counts(text):
    """perf stat -x , output: value,unit,event,..."""
    found = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in EVENTS:
            try:
                found[EVENTS[fields[2]]] = float(fields[0])
            except ValueError:
                raise BenchError(f"perf did not count {fields[2]}: {line}")
    if len(found) != len(EVENTS):
        raise BenchError(f"perf stat gave {sorted(found)}, not every event: {text[-500:]}")
    return found


def measure(cfg, server, n, size, logdir):
    """The counts over a counted stretch of the closed loop: perf attaches while the load pauses
    after its warm-up and detaches once every round has finished; the connections stay open,
    so that closing them is not counted."""
    with ServerRun(server, logdir) as run:
        argv = load_argv("rate", run.port, "--connections", n, "--size", size, "--warmup",
                         cfg.warmup, "--seconds", cfg.seconds, "--pause", "--keep-open",
                         "--stall", 60)
        with Load(argv, stdin=True) as load:
            load.wait_line("paused")
            perf = spawn(perf_argv("-p", run.pid), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
            time.sleep(ATTACH_SECONDS)  # perf has no line to say it has attached
            load.send_line()
            fields = load.wait_line("round_trips")
            perf.send_signal(signal.SIGINT)
            _, text = perf.communicate(timeout=30)
            run.alive_or_fail()
    trips = fields["round_trips"]
    figures = {k: v / trips for k, v in counts(text).items()}
    figures["cpu_us"] = figures.pop("cpu_ms") * 1000
    figures["rate"] = fields["rate"]
    return figures


def run(ctx):
    cfg = ctx.cfg
    why = unavailable()
    if why:
        return {"skipped": why}
    servers = bound_servers(ctx.ringio)
    rounds = cfg.rounds
    points = {}
    for n, size in POINTS[:1] if cfg.quick else POINTS:
        point = {s.name: [] for s in servers}
        for r in range(rounds):
            for server in rotate(servers, r):
                figures = measure(cfg, server, n, size, ctx.logdir)
                point[server.name].append(figures)
                log(f"kernel N={n} S={size} round {r + 1}/{rounds} {server.name}: "
                    f"{figures['cpu_us']:.2f} us of CPU, {figures['requests']:.2f} requests, "
                    f"{figures['completions']:.2f} completions a round trip")
        points[f"{n}x{size}"] = point
    return {"rounds": rounds, "seconds": cfg.seconds, "points": points}


def paired_ratio(rounds, reference, key):
    return median(ratios([f[key] for f in rounds], [f[key] for f in reference]))


def report(res, ctx):
    kernel = res[NAME]
    if "points" not in kernel:
        return {"skipped": kernel["skipped"]}
    tables = []
    for key, point in kernel["points"].items():
        rows = []
        for name, rounds in point.items():
            f = {k: median([each[k] for each in rounds]) for k in rounds[0]}
            rows.append([name, f"{f['rate']:,.0f}",
                         f"{paired_ratio(rounds, point[REFERENCE], 'rate'):.2f}",
                         f"{f['cpu_us']:.2f}",
                         f"{paired_ratio(rounds, point[REFERENCE], 'cpu_us'):.2f}",
                         f"{f['requests']:.2f}", f"{f['completions']:.2f}",
                         f"{f['enters'] * 1000:.1f}", f"{f['poll_arms'] * 1000:.1f}"])
        connections, size = key.split("x")
        tables.append({"title": f"{connections} connections x {size} B", "rows": rows})
    return dict(kernel, tables=tables, skipped=None,
                command=" ".join(perf_argv("-p", "PID")))
