"""mapped: mapped_bench on one file: ns per random record, GB/s per scan, cached and cold."""

import json
import shlex
import subprocess

from ..core import BUILD, SERVER_CPU, BenchError, Meter, boost, log, measured, median, relative
from ..fmt import compare, fmt_ratio

NAME = "mapped"

# What mapped_bench measures, by the keys it prints, with the report's labels.
MAPPED_RANDOM = [
    ("mapped_first_touch", "`mapped<const record[]>`, opened for the run: pages fault in on "
                           "first touch"),
    ("mapped_populate", "`mapped<const record[]>`, opened for the run with `.populate = true`"),
    ("mapped_steady", "`mapped<const record[]>`, already faulted in"),
    ("pread", "`pread`, 64 bytes a call"),
    ("ringio_qd1", "ringio `read_at`, 1 coroutine (1 read in flight)"),
    ("ringio_qd32", "ringio `read_at`, 32 coroutines (32 reads in flight)"),
    ("liburing_qd1", "liburing by hand, 1 read in flight"),
    ("liburing_qd32", "liburing by hand, 32 reads in flight"),
]
MAPPED_COLD_RANDOM = [
    ("mapped", "`mapped<const record[]>`, no advice"),
    ("mapped_random", "`mapped<const record[]>` + `advise(map_advice::random)`"),
    ("pread", "`pread`, 64 bytes a call"),
    ("ringio_qd32", "ringio `read_at`, 32 coroutines (32 reads in flight)"),
]
MAPPED_SCAN = [
    ("read_1mib", "`read()`, 1 MiB at a time"),
    ("mapped", "`mapped<const std::uint64_t[]>`"),
    ("mapped_sequential", "`mapped<const std::uint64_t[]>` + `advise(map_advice::sequential)`"),
    ("mapped_populate", "`mapped<const std::uint64_t[]>` opened with `.populate = true`"),
]


def run(ctx):
    """Random record reads and sequential scans of one file through mapped_bench, one
    invocation per round, pinned to the server CPU."""
    cfg = ctx.cfg
    size, reads = cfg.mapped_bytes, cfg.mapped_reads
    path = BUILD / f"mapped-{size >> 20}MiB.dat"
    base = [BUILD / "mapped_bench", "--file", path, "--size", size]
    log(f"mapped: preparing {relative(path)}")
    argv = [str(a) for a in base + ["--prepare"]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed:\n{done.stderr.strip()}")
    prepared = json.loads(done.stdout)
    log(f"mapped: {'wrote' if prepared['created'] else 'reused'} {path.name} "
        f"in {prepared['seconds']:.1f} s")
    cold_reads = cfg.mapped_cold_reads
    run_base = base + ["--reads", reads, "--cold-reads", cold_reads, "--evict", cfg.evict]
    rounds = []
    for r in range(cfg.rounds):
        argv = ["taskset", "-c", str(SERVER_CPU)] + [str(a) for a in run_base + ["--round", r]]

        def attempt():
            with Meter(cpu=SERVER_CPU) as meter:
                try:
                    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800,
                                          start_new_session=True, preexec_fn=boost)
                except subprocess.TimeoutExpired:
                    raise BenchError(f"timed out: {shlex.join(argv)}")
                meter.stop()
            if done.returncode != 0:
                raise BenchError(f"{shlex.join(argv)} failed ({done.returncode}):\n"
                                 f"{done.stderr.strip()}")
            return json.loads(done.stdout), meter

        out, meter = measured(cfg, f"mapped round {r + 1}/{cfg.rounds}", attempt)
        rounds.append(out)
        rnd = out["random"]["methods"]
        log(f"mapped round {r + 1}/{cfg.rounds}: random ns per record "
            + ", ".join(f"{k} {v['seconds'] * 1e9 / reads:,.0f}" for k, v in rnd.items())
            + "; warm GB/s "
            + ", ".join(f"{k} {size / v['seconds'] / 1e9:.2f}"
                        for k, v in out["warm"]["methods"].items())
            + "; cold GB/s "
            + ", ".join(f"{k} {size / v['seconds'] / 1e9:.2f}"
                        for k, v in out["cold"]["methods"].items())
            + "; cold random us per record "
            + ", ".join(f"{k} {v['seconds'] * 1e6 / cold_reads:,.1f}"
                        for k, v in out["cold_random"]["methods"].items())
            + f"; others {meter.foreign:.0%}")
    shown = ["taskset", "-c", str(SERVER_CPU)] + [
        relative(a) for a in run_base] + ["--round", "R"]
    result = {
        "file": relative(path), "file_bytes": size, "reads": reads,
        "cold_reads": cold_reads,
        "seed": rounds[0]["random"]["seed"], "rounds": len(rounds), "prepared": prepared,
        "command": shlex.join(shown),
        "cached_before_random": min(o["random"]["cached"] for o in rounds),
        "cached_before_warm": min(o["warm"]["cached"] for o in rounds),
        "eviction": sorted({o[part]["eviction"] for o in rounds
                            for part in ("cold", "cold_random")}),
        "cached_after_eviction": max(o[part]["cached_after_eviction"] for o in rounds
                                     for part in ("cold", "cold_random")),
        "random": {key: {"ns": [o["random"]["methods"][key]["seconds"] * 1e9 / reads
                                for o in rounds],
                         "faults": [o["random"]["methods"][key]["faults"] for o in rounds]}
                   for key, _ in MAPPED_RANDOM},
        "cold_random": {
            key: {"us": [o["cold_random"]["methods"][key]["seconds"] * 1e6 / cold_reads
                         for o in rounds],
                  "read_bytes": [o["cold_random"]["methods"][key]["read_bytes"] for o in rounds],
                  "major_faults": [o["cold_random"]["methods"][key]["major_faults"]
                                   for o in rounds]}
            for key, _ in MAPPED_COLD_RANDOM},
    }
    for condition in ("warm", "cold"):
        result[condition] = {
            key: {"gbps": [size / o[condition]["methods"][key]["seconds"] / 1e9 for o in rounds],
                  "faults": [o[condition]["methods"][key]["faults"] for o in rounds],
                  "major_faults": [o[condition]["methods"][key]["major_faults"] for o in rounds],
                  "read_bytes": [o[condition]["methods"][key]["read_bytes"] for o in rounds]}
            for key, _ in MAPPED_SCAN}
    return result



def report(res, ctx):
    """The tables, and the sentences that depend on this run's figures."""
    mp = res[NAME]
    size_mib = mp["file_bytes"] >> 20
    cold_reads = mp["cold_reads"]
    out = dict(mp, size_text=f"{size_mib >> 10} GiB" if size_mib >= 1024 else f"{size_mib} MiB",
               eviction_text=" or ".join(f"`{e}`" for e in mp["eviction"]),
               virtual=res["machine"].get("virtualisation", "none reported") != "none reported")

    rnd = mp["random"]
    ns = {k: median(v["ns"]) for k, v in rnd.items()}
    pread = ns["pread"]
    out["random_rows"] = [[label, f"{ns[key]:,.0f}", fmt_ratio(pread / ns[key]),
                           f"{median(rnd[key]['faults']):,.0f}"] for key, label in MAPPED_RANDOM]
    mapped_keys = [k for k, _ in MAPPED_RANDOM if k.startswith("mapped")]
    slowest = max(mapped_keys, key=lambda k: ns[k])
    text = [f"A mapped record cost {ns['mapped_steady']:,.0f} ns once its pages were mapped",
            f"and {ns[slowest]:,.0f} ns at worst, counting the set-up and faults of a fresh",
            f"mapping; `pread` cost {pread:,.0f} ns, so the slowest mapped variant was",
            f"{compare(pread / ns[slowest], 1)} pread."]
    if ns[slowest] * 1.1 <= pread:
        text.append("A mapped record is a memory access; a pread is a system call and a copy.")
    for depth in ("qd1", "qd32"):
        r, l = ns[f"ringio_{depth}"], ns[f"liburing_{depth}"]
        text.append(f"With {depth[2:]} in flight, ringio's `read_at` cost {r:,.0f} ns a record, "
                    f"{compare(pread / r, 1)} pread; liburing by hand cost {l:,.0f} ns "
                    f"(ringio {compare(l / r, 1)} it).")
    if min(v for k, v in ns.items() if k.startswith(("ringio", "liburing"))) >= pread / 1.1:
        text.append("No io_uring variant beat plain `pread` on the cached file: each read still "
                    "goes through the kernel's read path and copies its 64 bytes, and batching "
                    "shares only the cost of entering the kernel.")
    out["random_text"] = " ".join(text)

    cr = mp["cold_random"]
    us = {k: median(v["us"]) for k, v in cr.items()}
    mb = {k: median(v["read_bytes"]) / 1e6 for k, v in cr.items()}
    out["cold_rows"] = [[label, f"{us[key]:,.1f}", fmt_ratio(us["pread"] / us[key]),
                         f"{mb[key]:,.1f}", f"{median(cr[key]['major_faults']):,.0f}"]
                        for key, label in MAPPED_COLD_RANDOM]
    text = [f"The records themselves are {cold_reads * 64 / 1e6:,.2f} MB. Without advice, the",
            f"faults on the mapping made the kernel read {mb['mapped']:,.0f} MB",
            f"({mb['mapped'] / (mb['pread'] or float('nan')):,.0f}x what pread read), and the",
            f"mapping was {compare(us['pread'] / us['mapped'], 1)} pread; with",
            f"`map_advice::random` it read {mb['mapped_random']:,.0f} MB and was",
            f"{compare(us['pread'] / us['mapped_random'], 1)} pread. ringio's `read_at` with 32",
            f"reads in flight was {compare(us['pread'] / us['ringio_qd32'], 1)} pread."]
    if us["ringio_qd32"] * 1.1 <= us["pread"]:
        text.append("It keeps many reads in flight at once, where pread and a page fault wait "
                    "for one at a time.")
    out["cold_text"] = " ".join(text)

    warm, cold = mp["warm"], mp["cold"]
    gw = {k: median(v["gbps"]) for k, v in warm.items()}
    gc = {k: median(v["gbps"]) for k, v in cold.items()}
    out["scan_rows"] = [
        [label, f"{gw[key]:.2f}", fmt_ratio(gw[key] / gw["read_1mib"]),
         f"{median(warm[key]['faults']):,.0f}", f"{gc[key]:.2f}",
         fmt_ratio(gc[key] / gc["read_1mib"]),
         f"{median(cold[key]['faults']):,.0f} ({median(cold[key]['major_faults']):,.0f})",
         f"{median(cold[key]['read_bytes']) / 1e6:,.0f}"] for key, label in MAPPED_SCAN]
    scan_keys = [k for k, _ in MAPPED_SCAN if k != "read_1mib"]
    scan_labels = dict(MAPPED_SCAN)
    text = []
    for name, g in (("Warm", gw), ("Cold", gc)):
        lo = min(scan_keys, key=lambda k: g[k])
        hi = max(scan_keys, key=lambda k: g[k])
        text.append(f"{name}, `read()` scanned at {g['read_1mib']:.2f} GB/s and the mapped "
                    f"variants at {g[lo]:.2f} to {g[hi]:.2f} GB/s: from "
                    f"{compare(g[lo], g['read_1mib'])} `read()` ({scan_labels[lo]}) to "
                    f"{compare(g[hi], g['read_1mib'])} it ({scan_labels[hi]}).")
    out["scan_text"] = " ".join(text)

    # Where mmap loses, from this run's figures.
    random_labels, cold_labels = dict(MAPPED_RANDOM), dict(MAPPED_COLD_RANDOM)
    losses = []
    for key in mapped_keys:
        if ns[key] * 1.1 > pread:
            losses.append(f"cached random reads with {random_labels[key]} "
                          f"({compare(pread / ns[key], 1)} pread)")
    for key in ("mapped", "mapped_random"):
        slow = us[key] * 1.1 > us["pread"]
        greedy = mb[key] >= 2 * mb["pread"]
        if slow or greedy:
            how = [f"{compare(us['pread'] / us[key], 1)} pread"] if slow else []
            if greedy:
                how.append(f"reading {mb[key] / mb['pread']:,.0f}x as much from storage")
            losses.append(f"cold random reads with {cold_labels[key]} ({', '.join(how)})")
    for cond, g in (("warm", gw), ("cold", gc)):
        for key in scan_keys:
            if g[key] * 1.1 <= g["read_1mib"]:
                losses.append(f"the {cond} scan with {scan_labels[key]} "
                              f"({compare(g[key], g['read_1mib'])} `read()`)")
    out["losses_text"] = ("Where mmap did not win in this run: " + "; ".join(losses) + "."
                          if losses else "mmap won or tied everywhere in this run.")
    return out
