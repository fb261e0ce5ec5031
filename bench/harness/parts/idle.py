"""idle: user-space memory per idle connection."""

import time

from ..core import Load, ServerRun, descriptor_limit, load_argv, log, rate_load, rss_kib
from ..fmt import verdict
from ..servers import is_ringio, tcp_servers

NAME = "idle"
SIZE = 64


def run(ctx):
    """VmRSS after cfg.idle_connections connections (each having made one round trip, so the
    server has surely accepted it and armed its read) minus VmRSS after a warm-up that has
    already touched the server's buffer pools."""
    cfg = ctx.cfg
    count = cfg.idle_connections
    if descriptor_limit() < count + 64:
        return {"skipped": f"descriptor limit {descriptor_limit()} is below {count} connections"}
    results = {}
    for server in tcp_servers(ctx.ringio):
        with ServerRun(server, ctx.logdir, kill=True) as run:
            rate_load(run, 500, 4096, seconds=1, warmup=0)
            time.sleep(0.3)
            before = rss_kib(run.pid)
            with Load(load_argv("idle", run.port, "--connections", count, "--size", SIZE)) as load:
                load.wait_line("idle_ready")
                time.sleep(0.5)
                run.alive_or_fail()
                after = rss_kib(run.pid)
        per = (after - before) * 1024 / count
        results[server.name] = {"before_kib": before, "after_kib": after,
                                "bytes_per_connection": per}
        log(f"idle {server.name}: {before} KiB -> {after} KiB, {per:,.0f} B per connection")
    return {"connections": count, "servers": results}


def targets(res, ctx):
    idle = res.get(NAME, {})
    target = f"{ctx.cfg.idle_connections:,} idle connections: <= 1 KiB RSS each"
    if "servers" not in idle:
        return [(target, idle.get("skipped", "not measured in this run"), "")]
    per = idle["servers"]
    v = per["ringio"]["bytes_per_connection"]
    return [(target, f"{v:,.0f} B per connection: {verdict(v <= 1024)}",
             ", ".join(f"{k} {v['bytes_per_connection']:,.0f} B" for k, v in per.items()
                       if not is_ringio(k)))]


def report(res, ctx):
    idle = res[NAME]
    rows = [[name, f"{v['before_kib']:,}", f"{v['after_kib']:,}",
             f"{v['bytes_per_connection']:,.0f}"] for name, v in idle.get("servers", {}).items()]
    return {"skipped": idle.get("skipped"), "connections": idle.get("connections"), "rows": rows,
            "size": SIZE}
