"""close: the server's CPU time per connection that lives for one echo (connect, echo, close),
with no other connection open and with many idle ones held open meanwhile. A server whose cost
per connection grows with the connections it already holds shows it here."""

from ..core import (Meter, ServerRun, descriptor_limit, load_argv, log, measured, median,
                    rotate, run_load)
from ..fmt import fmt_ratio, verdict
from ..servers import is_ringio, scale_servers

NAME = "close"
SIZE = 128
TARGET = 1.2


def run(ctx):
    cfg = ctx.cfg
    idle = cfg.close_idle
    if descriptor_limit() < idle + 64:
        return {"skipped": f"descriptor limit {descriptor_limit()} is below {idle} connections"}
    servers = scale_servers(ctx.ringio)
    counts = [0, idle]
    per = {s.name: {str(c): {"us": [], "rate": []} for c in counts} for s in servers}
    for r in range(cfg.rounds):
        for server in rotate(servers, r):
            for count in counts:
                what = f"close {server.name} with {count} idle round {r + 1}/{cfg.rounds}"

                def attempt():
                    # A fresh server each time, killed at the end: the clean-up of the idle
                    # connections is not what is measured, and may take long.
                    with ServerRun(server, ctx.logdir, kill=True) as run:
                        with Meter(run.pid) as meter:
                            argv = load_argv("cycle", run.port, "--size", SIZE,
                                             "--seconds", cfg.close_seconds,
                                             "--server-pid", run.pid, "--stall", 30,
                                             *(["--idle", count] if count else []))
                            fields = run_load(argv, cfg.close_seconds + 120,
                                              want="server_cpu_us_per_cycle")
                            meter.stop()
                        run.alive_or_fail()
                    return fields, meter

                fields, meter = measured(cfg, what, attempt)
                entry = per[server.name][str(count)]
                entry["us"].append(fields["server_cpu_us_per_cycle"])
                entry["rate"].append(fields["rate"])
                log(f"{what}: {fields['server_cpu_us_per_cycle']:,.1f} us of server CPU per "
                    f"cycle, {fields['rate']:,.0f} cycles/s, others {meter.foreign:.0%}")
    return {"idle": idle, "seconds": cfg.close_seconds, "size": SIZE, "servers": per}


def ratio(entry, idle):
    return median(entry[str(idle)]["us"]) / median(entry["0"]["us"])


def targets(res, ctx):
    close = res.get(NAME, {})
    target = (f"server CPU per connect/echo/close cycle with {ctx.cfg.close_idle:,} idle "
              f"connections <= {TARGET}x that with none")
    if "servers" not in close:
        return [(target, close.get("skipped", "not measured in this run"), "")]
    per, idle = close["servers"], close["idle"]
    mine = ratio(per["ringio"], idle)
    return [(target, f"{fmt_ratio(mine)}x: {verdict(mine <= TARGET)}",
             ", ".join(f"{k} {fmt_ratio(ratio(v, idle))}x" for k, v in per.items()
                       if not is_ringio(k)))]


def report(res, ctx):
    close = res[NAME]
    if "servers" not in close:
        return {"skipped": close["skipped"]}
    idle = close["idle"]
    rows = []
    for name, v in close["servers"].items():
        rows.append([name, f"{median(v['0']['us']):,.1f}", f"{median(v[str(idle)]['us']):,.1f}",
                     fmt_ratio(ratio(v, idle)), f"{median(v['0']['rate']):,.0f}",
                     f"{median(v[str(idle)]['rate']):,.0f}"])
    return dict(close, rows=rows, target=TARGET, skipped=None)
