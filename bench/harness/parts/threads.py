"""threads: echo_server with one thread against two, on a machine whose cores the load shares."""

from ..core import (CLIENT_CPU, SERVER_CPU, keep_rate, measured_rate, median, rate_load,
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

            rate, meter = measured_rate(
                cfg, what, server, ctx.logdir,
                lambda run: rate_load(run, CONNECTIONS, SIZE, cfg.seconds, cfg.warmup, cpu=None,
                                      groups=GROUPS),
                cpus=f"{CLIENT_CPU},{SERVER_CPU}")
            keep_rate(point[server.name], what, rate, meter)
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
