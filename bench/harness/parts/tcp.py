"""tcp: round trips per second over the grid of connections x message sizes."""

from pathlib import Path
import subprocess

from ..core import (BenchError, keep_rate, measured_rate, median, paired, rate_load,
                    rotate)
from ..fmt import fmt_rate, fmt_ratio, verdict
from ..servers import (REFERENCE, REFERENCE_BOUNDED, REFERENCE_DIRECT, REFERENCE_POLLED, VARIANTS,
                       is_ringio, tcp_servers)

NAME = "tcp"
GRID = [(1, 128), (1, 4096), (50, 128), (50, 4096), (500, 128), (500, 4096)]
QUICK_GRID = [(50, 128)]
# The grid point the TCP target is judged on gets three times the rounds.
TARGET_POINT = (50, 128)
TARGET_KEY = "50x128"
TARGET_RATIO = 0.97


def run(ctx):
    cfg = ctx.cfg
    servers = tcp_servers(ctx.ringio)
    return {f"{n}x{size}": measure_point(cfg, servers, n, size, ctx.logdir,
                                         cfg.target_rounds if (n, size) == TARGET_POINT
                                         else cfg.rounds)
            for (n, size) in (QUICK_GRID if cfg.quick else GRID)}


def measure_point(cfg, servers, n, size, logdir, rounds):
    """Each server's rates and CPU use at `n` connections of `size` B, in `rounds` interleaved
    rounds (bench/pair measures through it too)."""
    point = {s.name: {"rates": [], "cpu": []} for s in servers}
    for r in range(rounds):
        for server in rotate(servers, r):
            what = f"tcp N={n} S={size} round {r + 1}/{rounds} {server.name}"

            rate, meter = measured_rate(
                cfg, what, server, logdir,
                lambda run: rate_load(run, n, size, cfg.seconds, cfg.warmup))
            keep_rate(point[server.name], what, rate, meter)
    return point


def targets(res, ctx):
    target = (f"TCP echo >= {TARGET_RATIO}x raw liburing at every grid point, ahead of every "
              "other peer at 50 x 128 B")
    tcp = res.get(NAME, {})
    if TARGET_KEY not in tcp:
        return [(target, "not measured in this run", "")]
    # Judged on the paired ratios: the medians of whole runs drift with the host.
    to_ref = {key: paired(point, "ringio", REFERENCE)[0] for key, point in tcp.items()}
    lowest = min(to_ref, key=to_ref.get)
    p = tcp[TARGET_KEY]
    ref = median(p[REFERENCE]["rates"])
    others = {k: median(v["rates"]) for k, v in p.items()
              if not is_ringio(k) and k != REFERENCE and k not in VARIANTS}
    best = max(others, key=others.get)
    peers = (f"raw liburing {fmt_rate(ref)}/s at 50 x 128 B; best other peer {best} "
             f"{others[best] / ref:.2f}x; raw liburing on direct descriptors "
             f"{median(p[REFERENCE_DIRECT]['rates']) / ref:.2f}x")
    to_others = {k: paired(p, "ringio", k)[0] for k in others}
    ahead = all(r > 1 for r in to_others.values())
    closest = min(to_others, key=to_others.get)
    points = ", ".join(f"{key.replace('x', ' x ')} B {to_ref[key]:.2f}x" for key in to_ref)
    mine = (f"{points} raw liburing round by round (lowest {to_ref[lowest]:.2f}x); at 50 x 128 B "
            f"{to_others[closest]:.2f}x the closest other peer, {closest} "
            f"({'ahead' if ahead else 'behind'}): "
            f"{verdict(to_ref[lowest] >= TARGET_RATIO and ahead)}")
    low = tcp[lowest]
    if REFERENCE_BOUNDED in low and REFERENCE_POLLED in low:
        # What the bound costs where ringio is furthest behind: the reference held to it, both ways.
        ref_low = median(low[REFERENCE]["rates"])
        peers += (f"; at {lowest.replace('x', ' x ')} B, raw liburing held to ringio's bound "
                  f"{median(low[REFERENCE_BOUNDED]['rates']) / ref_low:.2f}x (ringio "
                  f"{paired(low, 'ringio', REFERENCE_BOUNDED)[0]:.2f}x that), and bounded with a "
                  f"multishot poll {median(low[REFERENCE_POLLED]['rates']) / ref_low:.2f}x")
    return [(target, mine, peers)]


def report(res, ctx):
    tcp = res[NAME]
    # The servers of the run the figures come from (a later build may have more).
    names = [s.name for s in tcp_servers({}) if all(s.name in point for point in tcp.values())]
    others = [n for n in names if n != "ringio"]
    rates, spread, ratios = [], [], []
    for p, point in tcp.items():
        n, s = p.split("x")
        label = f"{n} x {s} B"
        ref = median(point[REFERENCE]["rates"])
        rates.append([label] + [
            f"{fmt_rate(median(point[k]['rates']))} "
            f"({fmt_ratio(median(point[k]['rates']) / ref)}; {median(point[k]['cpu']):.0%})"
            for k in names])
        spread.append([label] + [
            f"{min(point[k]['rates']) / median(point[k]['rates']):.2f} to "
            f"{max(point[k]['rates']) / median(point[k]['rates']):.2f}" for k in names])
        ratios.append([label] + [
            "{} ({}/{})".format(fmt_ratio(r), wins, rounds)
            for r, wins, rounds in (paired(point, "ringio", k) for k in others)])
    return {"names": names, "others": others, "rates": rates, "spread": spread,
            "ratios": ratios, "target_point": TARGET_POINT}


def chart(tcp, png, tmp):
    """The medians of the grid, relative to the reference, as a clustered histogram."""
    names = [s.name for s in tcp_servers({}) if all(s.name in point for point in tcp.values())]
    data = Path(tmp) / "tcp.dat"
    top = 1.0
    with open(data, "w") as f:
        f.write("point " + " ".join(f'"{n}"' for n in names) + "\n")
        for p, point in tcp.items():
            ref = median(point[REFERENCE]["rates"])
            row = [median(point[n]["rates"]) / ref for n in names]
            top = max([top] + row)
            n, s = p.split("x")
            f.write(f'"{n} x {s} B" ' + " ".join(f"{v:.4f}" for v in row) + "\n")
    script = Path(tmp) / "tcp.gp"
    script.write_text(f"""
set terminal pngcairo size 1000,520 font "sans,10" noenhanced
set output "{png}"
set title "TCP echo: round trips per second relative to the raw liburing server (median)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "ratio to raw liburing"
set xlabel "connections x message size"
set yrange [0:{top * 1.15:.2f}]
set grid ytics
set key outside right top vertical
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#444444"
plot for [i=2:{len(names) + 1}] "{data}" using i:xtic(1) title columnheader(i)
""")
    done = subprocess.run(["gnuplot", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"gnuplot failed: {done.stderr}")
