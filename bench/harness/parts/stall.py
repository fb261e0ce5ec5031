"""stall: a healthy client's echo while many peers send without pause and never read."""

from ..core import (ServerRun, descriptor_limit, load_argv, log, median, rotate, run_load,
                    wait_for_quiet)
from ..fmt import verdict
from ..servers import is_ringio, scale_servers

NAME = "stall"
SIZE = 128
TARGET_MS = 10


def run(ctx):
    cfg = ctx.cfg
    peers = cfg.stall_peers
    if descriptor_limit() < peers + 64:
        return {"skipped": f"descriptor limit {descriptor_limit()} is below {peers} connections"}
    servers = scale_servers(ctx.ringio)
    results = {s.name: [] for s in servers}
    for r in range(cfg.rounds):
        for server in rotate(servers, r):
            what = f"stall {server.name} with {peers} stalled peers round {r + 1}/{cfg.rounds}"

            # No noise meter: the peers' traffic is done by the kernel's softirq threads, which
            # it would count as other work; and a latency measured on a busy machine only errs
            # towards slower.
            wait_for_quiet(cfg)
            with ServerRun(server, ctx.logdir, kill=True) as run:
                argv = load_argv("stall", run.port, "--peers", peers, "--size", SIZE,
                                 "--echoes", cfg.stall_echoes, "--echo-timeout",
                                 cfg.stall_timeout, "--server-pid", run.pid, "--stall", 30)
                fields = run_load(argv, cfg.stall_timeout + 120, want="p99_us")
                run.alive_or_fail()
            fields.pop("stderr", None)
            results[server.name].append(fields)
            log(f"{what}: {describe(fields, cfg.stall_timeout)}, server RSS "
                f"{fields['server_rss_before_kib']:,.0f} KiB before, "
                f"{fields['server_rss_after_kib']:,.0f} after; peers sent "
                f"{fields['peer_mib']:,.0f} MiB")
    return {"peers": peers, "echoes": cfg.stall_echoes, "size": SIZE,
            "timeout": cfg.stall_timeout, "servers": results}


def describe(fields, timeout):
    if fields["timed_out"]:
        return (f"{fields['completed']:.0f} of {fields['echoes']:.0f} echoes back, then none "
                f"within {timeout:g} s")
    return (f"p50 {fields['p50_us'] / 1000:.2f} ms, p99 {fields['p99_us'] / 1000:.2f} ms, "
            f"max {fields['max_us'] / 1000:.2f} ms")


def p99_ms(rounds):
    """The median over the rounds of each round's p99; infinite if any round lost an echo."""
    if any(f["timed_out"] for f in rounds):
        return float("inf")
    return median([f["p99_us"] for f in rounds]) / 1000


def targets(res, ctx):
    stall = res.get(NAME, {})
    target = (f"healthy echo with {ctx.cfg.stall_peers:,} stalled peers: p99 < {TARGET_MS} ms, "
              "server RSS bounded")
    if "servers" not in stall:
        return [(target, stall.get("skipped", "not measured in this run"), "")]
    servers, timeout = stall["servers"], stall["timeout"]

    def said(rounds):
        ms = p99_ms(rounds)
        return f"no echo within {timeout:g} s" if ms == float("inf") else f"p99 {ms:.2f} ms"

    mine = servers["ringio"]
    rss = max(f["server_rss_after_kib"] for f in mine) / 1024
    return [(target, f"{said(mine)}, {rss:,.1f} MiB resident: {verdict(p99_ms(mine) < TARGET_MS)}",
             ", ".join(f"{k} {said(v)}" for k, v in servers.items() if not is_ringio(k)))]


def report(res, ctx):
    stall = res[NAME]
    if "servers" not in stall:
        return {"skipped": stall["skipped"]}
    rows = []
    for name, rounds in stall["servers"].items():
        ms = lambda key: f"{median([f[key] for f in rounds]) / 1000:,.2f}"
        lost = sum(1 for f in rounds if f["timed_out"])
        kib = lambda key: f"{median([f[key] for f in rounds]):,.0f}"
        if lost:
            echo = [f"none within {stall['timeout']:g} s in {lost} of {len(rounds)} rounds", "", ""]
        else:
            echo = [ms("p50_us"), ms("p99_us"), ms("max_us")]
        rows.append([name, *echo, kib("server_rss_before_kib"), kib("server_rss_stalled_kib"),
                     kib("server_rss_after_kib"),
                     f"{median([f['peer_mib'] for f in rounds]):,.0f}"])
    return dict(stall, rows=rows, target_ms=TARGET_MS, skipped=None)
