"""callgrind: user-space instructions per round trip, in two shapes of load. Counted: the
difference between the totals after K1 and after K2 round trips, so that start-up and connection
set-up cancel. Timed: a closed loop whose warm-up is zeroed out of the counts, then the
instructions of a counted stretch over its round trips."""

import subprocess
from pathlib import Path

from ..core import BenchError, Load, ServerRun, load_argv, log, median
from ..fmt import fmt_ratio, verdict
from ..servers import REFERENCE, REFERENCE_BOUNDED, REFERENCE_POLLED, is_ringio, tcp_servers

NAME = "callgrind"
TARGET_RATIO = 1.15
CONNECTIONS, SIZE = 50, 128


def total(prefix):
    """The instructions and the system calls of every dump written under `prefix`."""
    found = {"Ir": 0, "sysCount": 0}
    dumps = 0
    for path in Path(prefix).parent.glob(Path(prefix).name + "*"):
        events = []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                dumps += 1
                for event, value in zip(events, line.split()[1:]):
                    if event in found:
                        found[event] += int(value)
    if not dumps:
        raise BenchError(f"no callgrind totals in {prefix}*")
    return found


class Profiled:
    """A server under callgrind. Valgrind does not deliver SIGTERM to a process blocked in
    io_uring_enter, so its counters are zeroed and dumped through vgdb (callgrind_control), and
    the server is then killed."""

    def __init__(self, server, ctx, label):
        self.prefix = Path(ctx.tmp) / f"{server.slug}.{label}.out"
        self.vgdb = Path(ctx.tmp) / "vgdb"
        # --fair-sched: echo_server's threads take turns (valgrind's default lock can starve one).
        # --collect-systime: the system calls too, which say how many loop turns a round trip
        # took (what each turn costs is shared by the round trips it serves).
        wrapper = ["valgrind", "--tool=callgrind", "--collect-atstart=yes", "--fair-sched=yes",
                   "--collect-systime=yes",
                   f"--callgrind-out-file={self.prefix}", f"--vgdb-prefix={self.vgdb}"]
        self.run = ServerRun(server, ctx.logdir, wrapper, ready_timeout=120, kill=True)

    def __enter__(self):
        self.run.__enter__()
        return self

    def control(self, action):
        done = subprocess.run(["callgrind_control", f"--vgdb-prefix={self.vgdb}", action,
                               str(self.run.pid)], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BenchError(f"callgrind_control {action} failed: {done.stdout} {done.stderr}")

    def __exit__(self, *exc):
        return self.run.__exit__(*exc)


def counted(ctx, server, k):
    """The total after k round trips, the connections held open until the profile is written:
    the server's clean-up of them, which the dump might or might not catch, stays out."""
    with Profiled(server, ctx, k) as profiled:
        argv = load_argv("rate", profiled.run.port, "--connections", CONNECTIONS, "--size", SIZE,
                         "--round-trips", k, "--keep-open", "--stall", 60)
        with Load(argv) as load:
            load.wait_line("round_trips")
            profiled.run.alive_or_fail()
            profiled.control("--dump")
    return total(profiled.prefix)


def timed(ctx, server):
    """Instructions and system calls of a closed loop, and its round trips: the warm-up's counts
    zeroed while the load pauses, then a counted stretch that ends with every round finished."""
    cfg = ctx.cfg
    with Profiled(server, ctx, "timed") as profiled:
        argv = load_argv("rate", profiled.run.port, "--connections", CONNECTIONS, "--size", SIZE,
                         "--warmup", cfg.callgrind_warmup, "--seconds", cfg.callgrind_seconds,
                         "--pause", "--keep-open", "--stall", 60)
        with Load(argv, stdin=True) as load:
            load.wait_line("paused")
            profiled.control("--zero")
            load.send_line()
            fields = load.wait_line("round_trips")
            profiled.run.alive_or_fail()
            profiled.control("--dump")
    return total(profiled.prefix), int(fields["round_trips"])


def run(ctx):
    """Bursts (a run in which the server finds fewer completions per wake-up for a while) only
    ever add instructions, so each server is measured in interleaved rounds and the counted
    slope is taken between the smallest totals at K1 and at K2."""
    cfg = ctx.cfg
    k1, k2 = cfg.callgrind_counts
    servers = tcp_servers(ctx.ringio)
    rounds = {s.name: [] for s in servers}
    timed_rounds = {s.name: [] for s in servers}
    for rep in range(cfg.callgrind_reps):
        for server in servers:
            both = {k: counted(ctx, server, k) for k in (k1, k2)}
            totals = {k: both[k]["Ir"] for k in (k1, k2)}
            rounds[server.name].append(totals)
            events, trips = timed(ctx, server)
            ir = events["Ir"]
            timed_rounds[server.name].append({"ir": ir, "round_trips": trips,
                                              "syscalls": events["sysCount"]})
            log(f"callgrind round {rep + 1}/{cfg.callgrind_reps} {server.name}: counted "
                f"{slope(totals, k1, k2):,.0f} Ir per round trip (totals {totals[k1]:,} at {k1}, "
                f"{totals[k2]:,} at {k2}); timed {ir / trips:,.0f} ({ir:,} over {trips:,})")
    return {"counts": [k1, k2], "warmup": cfg.callgrind_warmup, "seconds": cfg.callgrind_seconds,
            "servers": {name: summary(rounds[name], timed_rounds[name], k1, k2)
                        for name in rounds}}


def slope(totals, k1, k2):
    """Instructions per round trip between the totals at K1 and at K2 round trips."""
    return (totals[k2] - totals[k1]) / (k2 - k1)


def summary(rounds, timed_rounds, k1, k2):
    low = {k: min(r[k] for r in rounds) for k in (k1, k2)}
    return {"ir_per_round_trip": slope(low, k1, k2),
            "samples": [slope(r, k1, k2) for r in rounds],
            "totals": [{str(k): r[k] for k in (k1, k2)} for r in rounds],
            "timed_ir_per_round_trip": median([t["ir"] / t["round_trips"] for t in timed_rounds]),
            "timed_syscalls_per_round_trip": median([t["syscalls"] / t["round_trips"]
                                                     for t in timed_rounds]),
            "timed": timed_rounds}


def targets(res, ctx):
    cg = res.get(NAME, {}).get("servers", {})
    target = (f"user-space instructions per round trip <= {TARGET_RATIO}x raw liburing's, "
              "count-based and time-based")
    if not cg:
        return [(target, "not measured in this run", "")]
    peers = ", ".join(f"{k} {v['ir_per_round_trip']:,.0f} counted, "
                      f"{v['timed_ir_per_round_trip']:,.0f} timed" for k, v in cg.items()
                      if not is_ringio(k))
    mine, ref = cg["ringio"], cg[REFERENCE]
    counted = mine["ir_per_round_trip"] / ref["ir_per_round_trip"]
    timed = mine["timed_ir_per_round_trip"] / ref["timed_ir_per_round_trip"]
    return [(target, f"{mine['ir_per_round_trip']:,.0f} counted ({fmt_ratio(counted)}x), "
                     f"{mine['timed_ir_per_round_trip']:,.0f} timed ({fmt_ratio(timed)}x): "
                     f"{verdict(max(counted, timed) <= TARGET_RATIO)}", peers)]


def report(res, ctx):
    cg = res[NAME]
    servers = cg["servers"]
    ref = servers[REFERENCE]
    rows = []
    for name, v in servers.items():
        samples = v["samples"]
        timed = [t["ir"] / t["round_trips"] for t in v["timed"]]
        rows.append([name, f"{v['ir_per_round_trip']:,.0f}",
                     f"{min(samples):,.0f}-{max(samples):,.0f}",
                     f"{v['ir_per_round_trip'] / ref['ir_per_round_trip']:.2f}",
                     f"{v['timed_ir_per_round_trip']:,.0f}",
                     f"{min(timed):,.0f}-{max(timed):,.0f}",
                     f"{v['timed_ir_per_round_trip'] / ref['timed_ir_per_round_trip']:.2f}",
                     f"{v.get('timed_syscalls_per_round_trip', float('nan')):.3f}"])
    trips = median([t["round_trips"] for v in servers.values() for t in v["timed"]])
    k1, k2 = cg["counts"]
    # The bounded builds, where this run has them: what the bound costs when written by hand.
    bounded = {key: f"{servers[name]['timed_ir_per_round_trip']:,.0f}"
               for key, name in (("bounded", REFERENCE_BOUNDED), ("polled", REFERENCE_POLLED))
               if name in servers}
    return {"k1": k1, "k2": k2, "warmup": cg["warmup"], "seconds": cg["seconds"],
            "reps": ctx.cfg.callgrind_reps, "rows": rows, "connections": CONNECTIONS,
            "size": SIZE, "timed_round_trips": trips,
            "ringio": f"{servers['ringio']['timed_ir_per_round_trip']:,.0f}", **bounded}
