"""udp: UDP round trips per second, with sockperf as an outside anchor."""

import re
import subprocess

from ..core import (CLIENT_CPU, BenchError, Server, boost, log, measured_rate, median, paired,
                    rate_load, rotate)
from ..fmt import fmt_rate, fmt_ratio
from ..servers import udp_servers

NAME = "udp"
GRID = [(1, 128), (50, 128)]
QUICK_GRID = [(1, 128)]
ANCHOR = "sockperf server"


def sockperf_rate(port, seconds, size):
    argv = ["taskset", "-c", str(CLIENT_CPU), "sockperf", "ping-pong", "-i", "127.0.0.1",
            "-p", str(port), "-t", str(max(1, round(seconds))), "-m", str(size)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                          start_new_session=True, preexec_fn=boost)
    text = done.stdout + done.stderr
    m = re.search(r"RunTime=([0-9.]+) sec.*?ReceivedMessages=(\d+)", text)
    if done.returncode != 0 or not m or int(m.group(2)) == 0:
        raise BenchError(f"sockperf ping-pong failed: {text.strip()[-400:]}")
    return int(m.group(2)) / float(m.group(1))


def run(ctx):
    cfg = ctx.cfg
    servers = udp_servers(ctx.ringio)
    anchor = Server(ANCHOR, ["sockperf", "server", "-i", "127.0.0.1", "-p", "{port}"], "udp")
    results = {}
    for (n, size) in (QUICK_GRID if cfg.quick else GRID):
        entries = servers + ([anchor] if n == 1 else [])
        point = {s.name: {"rates": []} for s in entries}
        for r in range(cfg.rounds):
            for server in rotate(entries, r):
                what = f"udp N={n} S={size} round {r + 1}/{cfg.rounds} {server.name}"

                def load(run):
                    if server is anchor:
                        return sockperf_rate(run.port, cfg.seconds + cfg.warmup, size)
                    return rate_load(run, n, size, cfg.seconds, cfg.warmup, udp=True)

                rate, meter = measured_rate(cfg, what, server, ctx.logdir, load)
                point[server.name]["rates"].append(rate)
                log(f"{what}: {rate:,.0f}/s, others {meter.foreign:.0%}")
        results[f"{n}x{size}"] = point
    return results


def report(res, ctx):
    udp = res[NAME]
    names = [s.name for s in udp_servers({})] + [ANCHOR]
    others = [name for name in names if name != "ringio"]
    rates, ratios = [], []
    for p, point in udp.items():
        n, s = p.split("x")
        label = f"{n} x {s} B"
        rates.append([label] + [fmt_rate(median(point[k]["rates"])) if k in point
                                else "(one socket only)" for k in names])
        ratios.append([label] + ["{} ({}/{})".format(fmt_ratio(r), wins, rounds) if k in point
                                 else "-" for k in others
                                 for r, wins, rounds in [paired(point, "ringio", k) if k in point
                                                         else (0, 0, 0)]])
    return {"names": names, "others": others, "rates": rates, "ratios": ratios}
