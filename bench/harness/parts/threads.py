"""threads: echo_server with one thread against two, on a machine whose cores the load shares."""

from ..core import (CLIENT_CPU, SERVER_CPU, Meter, ServerRun, log, measured, median, rate_load,
                    rotate)
from ..fmt import compare, fmt_rate, fmt_ratio
from ..servers import thread_servers

NAME = "threads"
# This many load generators at once, each with this many connections of this size.
GROUPS, CONNECTIONS, SIZE = 2, 25, 128


def run(ctx):
    """Nothing is pinned: servers and load generators share both cores."""
    cfg = ctx.cfg
    servers = thread_servers(ctx.ringio)
    point = {s.name: {"rates": [], "cpu": []} for s in servers}
    for r in range(cfg.rounds):
        for server in rotate(servers, r):
            what = (f"threads {GROUPS} x {CONNECTIONS} x {SIZE} B round {r + 1}/{cfg.rounds} "
                    f"{server.name}")

            def attempt():
                with ServerRun(server, ctx.logdir, cpus=f"{CLIENT_CPU},{SERVER_CPU}") as run:
                    with Meter(run.pid) as meter:
                        rate = rate_load(run, CONNECTIONS, SIZE, cfg.seconds, cfg.warmup,
                                         cpu=None, groups=GROUPS)
                        meter.stop()
                    run.alive_or_fail()
                return rate, meter

            rate, meter = measured(cfg, what, attempt)
            busy = meter.server / meter.wall
            point[server.name]["rates"].append(rate)
            point[server.name]["cpu"].append(busy)
            log(f"{what}: {rate:,.0f}/s, server CPU {busy:.0%}, others {meter.foreign:.0%}")
    return {"load": {"groups": GROUPS, "connections": CONNECTIONS, "size": SIZE},
            "servers": point}


def report(res, ctx):
    th = res[NAME]
    servers = th["servers"]
    one = median(servers["ringio, 1 thread"]["rates"])
    two = median(servers["ringio, 2 threads"]["rates"])
    rows = []
    for name, v in servers.items():
        rate = median(v["rates"])
        rows.append([name, fmt_rate(rate), fmt_ratio(rate / one), f"{median(v['cpu']):.0%}",
                     f"{min(v['rates']) / rate:.2f} to {max(v['rates']) / rate:.2f}"])
    return dict(th["load"], rows=rows, comparison=compare(two, one),
                cpus=f"{CLIENT_CPU},{SERVER_CPU}")
