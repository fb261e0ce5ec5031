"""stop: how long the examples take from SIGTERM to their exit while they hold many
connections."""

import os
import signal
import subprocess
import time

from ..core import (BenchError, Load, ServerRun, descriptor_limit, load_argv, log, median,
                    wait_descriptors)
from ..servers import stop_servers

NAME = "stop"
TARGET = 0.3


def run(ctx):
    cfg = ctx.cfg
    count = cfg.stop_connections
    if descriptor_limit() < count + 64:
        return {"skipped": f"descriptor limit {descriptor_limit()} is below {count} connections"}
    results = {}
    for r in range(cfg.rounds):
        for server, echoes in stop_servers(ctx.ringio):
            with ServerRun(server, ctx.logdir, kill=True) as run:
                # tcp_server echoes nothing: its connections are only opened, and counted as
                # accepted once it holds a descriptor for each.
                argv = load_argv("idle", run.port, "--connections", count,
                                 "--size", 64 if echoes else 0, "--stall", 60)
                with Load(argv) as load:
                    load.wait_line("idle_ready")
                    wait_descriptors(run, count)
                    start = time.monotonic()
                    os.kill(run.pid, signal.SIGTERM)
                    try:
                        status = run.proc.wait(cfg.stop_timeout)
                    except subprocess.TimeoutExpired:
                        status = None
                    seconds = time.monotonic() - start
            if status not in (0, None):
                raise BenchError(f"{server.name} exited with {status} on SIGTERM")
            entry = results.setdefault(server.name, {"seconds": [], "timed_out": 0})
            entry["seconds"].append(seconds)
            entry["timed_out"] += status is None
            log(f"stop {server.name} with {count:,} connections round {r + 1}/{cfg.rounds}: "
                + (f"{seconds:.3f} s" if status == 0 else f"still running after {seconds:.0f} s"))
    return {"connections": count, "timeout": cfg.stop_timeout, "servers": results}


def shown(entry, timeout):
    if entry["timed_out"]:
        return (f"still running after {timeout:.0f} s "
                f"({entry['timed_out']} of {len(entry['seconds'])})")
    return f"{median(entry['seconds']):.2f} s"


def targets(res, ctx):
    stop = res.get(NAME, {})
    target = (f"SIGTERM to exit with {ctx.cfg.stop_connections:,} connections open: "
              f"< {TARGET} s")
    if "servers" not in stop:
        return [(target, stop.get("skipped", "not measured in this run"), "")]
    servers = stop["servers"]
    met = all(not v["timed_out"] and median(v["seconds"]) < TARGET for v in servers.values())
    mine = "; ".join(f"{k} {shown(v, stop['timeout'])}" for k, v in servers.items())
    return [(target, f"{mine}: {'met' if met else '**missed**'}", "")]


def report(res, ctx):
    stop = res[NAME]
    if "servers" not in stop:
        return {"skipped": stop["skipped"]}
    rows = [[name, shown(v, stop["timeout"]),
             f"{min(v['seconds']):.2f} to {max(v['seconds']):.2f} s"]
            for name, v in stop["servers"].items()]
    return dict(stop, rows=rows, target=TARGET, skipped=None)
