"""channel: records between two processes, ringio's channel against a Unix stream socket, a pipe,
eventfd with shared memory and Boost.Interprocess's message_queue (throughput and ping-pong
latency, 64 B and 4 KiB records, one run of channel_bench); and the user-space instructions of an
awaited futex wait against a blocking one, under callgrind."""

import json
import shlex
import subprocess
from pathlib import Path

from ..core import BUILD, BenchError, boost, log, median, relative
from ..fmt import fmt_ratio, verdict
from .callgrind import total

NAME = "channel"
THROUGHPUT_TARGET, LATENCY_TARGET, WAIT_TARGET = 10.0, 0.5, 1.2
REFERENCE = "unix_socket"
METHODS = [
    ("channel_blocking", "ringio channel, blocking `send` / `receive`, a record a call"),
    ("channel_batch", "ringio channel, `try_send` / `try_receive` of up to 64 records at once"),
    ("channel_in_place", "ringio channel, records written and checked in place: `prepare` / "
                         "`commit` and `peek` / `consume`, spans of up to 16"),
    ("channel_awaited", "ringio channel, `co_await send` / `receive` in an `io_context`"),
    ("unix_socket", "Unix stream socket, a `write` a record"),
    ("pipe", "pipe, a `write` a record"),
    ("eventfd_shm", "eventfd + a ring in shared memory, a signal a record"),
    ("boost_mq", "Boost.Interprocess `message_queue`"),
    ("shm_floor", "floor: a ring in shared memory written by hand, both ends spinning, records "
                  "written and checked in place, spans of up to 16 (no system call, no liveness)"),
]
# Waits counted by the waiter under callgrind (K1, K2): the slope between them is per wait.
FUTEX_COUNTS = {False: (1000, 3000), True: (200, 600)}
# blocking: futex(2); awaited: ringio's; raw: the floor of any io_uring wait (no loop around it),
# measured only where the kernel has IORING_OP_FUTEX_WAIT.
WAITS = ("blocking", "awaited", "raw")
FUTEX_DELAY_US = 500  # before each of the peer's writes, so that the waiter is surely asleep


def waiter_total(ctx, how, count):
    """The waiter's user-space instructions for `count` waits, `blocking` or `awaited`; its peer
    runs outside valgrind."""
    tag = f"futex.{how}.{count}"
    word = Path(ctx.tmp) / f"{tag}.word"
    word.write_bytes(b"")
    prefix = Path(ctx.tmp) / f"{tag}.out"
    bench = str(BUILD / "channel_bench")
    peer = subprocess.Popen([bench, "futex_peer", str(word), str(count), str(FUTEX_DELAY_US)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    argv = ["valgrind", "--tool=callgrind", "--fair-sched=yes", f"--callgrind-out-file={prefix}",
            bench, "futex_waiter", str(word), str(count), how]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        peer_err = peer.communicate(timeout=60)[1]
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    if done.returncode != 0 or peer.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({done.returncode}, peer "
                         f"{peer.returncode}):\n{done.stderr.strip()[-2000:]}\n{peer_err}")
    info = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    return total(prefix), info["native"]


def futex_instructions(ctx):
    k1, k2 = FUTEX_COUNTS[ctx.cfg.quick]
    reps = 1 if ctx.cfg.quick else 3
    out = {"counts": [k1, k2], "delay_us": FUTEX_DELAY_US, "reps": reps}
    for how in WAITS:
        if how == "raw" and not out["awaited"]["native"]:
            log("channel: no IORING_OP_FUTEX_WAIT on this kernel, so no bare io_uring wait")
            continue
        totals = {k1: [], k2: []}
        native = True
        for _ in range(reps):
            for k in (k1, k2):
                ir, native_k = waiter_total(ctx, how, k)
                totals[k].append(ir)
                native = native and native_k
        per_wait = (min(totals[k2]) - min(totals[k1])) / (k2 - k1)
        out[how] = {"totals": {str(k): v for k, v in totals.items()}, "ir_per_wait": per_wait,
                    "native": native}
        log(f"channel: {how} futex wait, {per_wait:,.0f} instructions per wait "
            f"({through(how, native)})")
    out["ratio"] = out["awaited"]["ir_per_wait"] / out["blocking"]["ir_per_wait"]
    if "raw" in out:
        out["raw_ratio"] = out["awaited"]["ir_per_wait"] / out["raw"]["ir_per_wait"]
        out["floor_ratio"] = out["raw"]["ir_per_wait"] / out["blocking"]["ir_per_wait"]
    return out


def through(how, native):
    """What a wait of kind `how` goes through."""
    if how == "blocking":
        return "futex(2)"
    if how == "raw":
        return "IORING_OP_FUTEX_WAIT on a bare ring, liburing by hand"
    return "IORING_OP_FUTEX_WAIT" if native else "the timer fallback"


def run(ctx):
    """One run of `channel_bench all` (every method, size and mode, interleaved rounds), at high
    priority; then the futex waits under callgrind."""
    argv = [str(BUILD / "channel_bench"), "all"] + (["--quick"] if ctx.cfg.quick else [])
    log("channel: " + shlex.join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                              start_new_session=True, preexec_fn=boost)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {shlex.join(argv)}")
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stderr.strip()}")
    lines = done.stdout.splitlines()
    measurements = [json.loads(line) for line in lines if line.startswith("{")]
    table = "\n".join(line for line in lines if not line.startswith("{")).strip()
    for line in table.splitlines():
        log(f"channel: {line}")
    shown = [relative(argv[0])] + argv[1:]
    return {"command": shlex.join(shown), "measurements": measurements, "table": table,
            "futex": futex_instructions(ctx)}


def medians(ch):
    """{(mode, method, size): {field: median}} over the rounds."""
    grouped = {}
    for m in ch["measurements"]:
        grouped.setdefault((m["mode"], m["method"], m["size"]), []).append(m)
    out = {}
    for key, ms in grouped.items():
        fields = ("records_per_second",) if key[0] == "throughput" else ("p50_ns", "p99_ns")
        out[key] = {f: median([m[f] for m in ms]) for f in fields}
    return out


def ratios(ch):
    """For each size: the channel's throughput and p50 as ratios to the Unix socket's."""
    md = medians(ch)
    out = {}
    for size in (64, 4096):
        sock_rate = md[("throughput", REFERENCE, size)]["records_per_second"]
        sock_p50 = md[("pingpong", REFERENCE, size)]["p50_ns"]
        out[size] = {
            method: {
                "throughput": md[("throughput", method, size)]["records_per_second"] / sock_rate,
                "p50": (md[("pingpong", method, size)]["p50_ns"] / sock_p50
                        if ("pingpong", method, size) in md else float("nan"))}
            for method in ("channel_blocking", "channel_batch", "channel_in_place",
                           "channel_awaited")
            if ("throughput", method, size) in md}
    return out


def targets(res, ctx):
    ch = res.get(NAME)
    rows = [f"channel throughput between two processes >= {THROUGHPUT_TARGET:g}x a Unix "
            "stream socket's",
            f"channel ping-pong latency (p50) <= {LATENCY_TARGET}x a Unix stream socket's",
            f"awaited futex wait <= {WAIT_TARGET}x a blocking one in user-space instructions"]
    if not ch:
        return [(row, "not measured in this run", "") for row in rows]
    r = ratios(ch)

    def per_size(kind, ok):
        return "; ".join(
            f"{size} B: " + ", ".join(
                f"{method.removeprefix('channel_')} {fmt_ratio(v[kind])}x "
                f"({verdict(ok(v[kind]))})"
                for method, v in r[size].items() if v[kind] == v[kind])
            for size in (64, 4096))

    fx = ch["futex"]
    md = medians(ch)

    def rate(method, size):
        return md[("throughput", method, size)]["records_per_second"]

    floor = "; ".join(f"{size} B {fmt_ratio(rate('shm_floor', size) / rate(REFERENCE, size))}x"
                      for size in (64, 4096) if ("throughput", "shm_floor", size) in md)
    return [
        (rows[0], per_size("throughput", lambda x: x >= THROUGHPUT_TARGET)
         + (f"; the floor of any shared-memory transport (`shm_floor`, written by hand): {floor}"
            if floor else ""), ""),
        (rows[1], per_size("p50", lambda x: x <= LATENCY_TARGET), ""),
        (rows[2], f"{fx['awaited']['ir_per_wait']:,.0f} against "
                  f"{fx['blocking']['ir_per_wait']:,.0f}, {fmt_ratio(fx['ratio'])}x: "
                  f"{verdict(fx['ratio'] <= WAIT_TARGET)}"
                  + (f"; a bare io_uring wait alone costs {fx['raw']['ir_per_wait']:,.0f} "
                     f"({fmt_ratio(fx['floor_ratio'])}x the blocking one), ringio's "
                     f"{fmt_ratio(fx['raw_ratio'])}x that" if "raw" in fx else ""), ""),
    ]


def report(res, ctx):
    ch = res[NAME]
    md = medians(ch)
    rows = []
    for size in (64, 4096):
        sock_rate = md[("throughput", REFERENCE, size)]["records_per_second"]
        sock_p50 = md[("pingpong", REFERENCE, size)]["p50_ns"]
        for method, label in METHODS:
            if ("throughput", method, size) not in md:
                continue  # boost_mq, where Boost.Interprocess was not found
            rate = md[("throughput", method, size)]["records_per_second"]
            pp = md.get(("pingpong", method, size))
            rows.append([f"{size:,} B", label, f"{rate:,.0f}", f"{rate * size / 1e6:,.0f}",
                         fmt_ratio(rate / sock_rate),
                         f"{pp['p50_ns'] / 1e3:,.2f}" if pp else "-",
                         f"{pp['p99_ns'] / 1e3:,.2f}" if pp else "-",
                         fmt_ratio(pp["p50_ns"] / sock_p50) if pp else "-"])
    fx = ch["futex"]
    futex_rows = [[how, f"{fx[how]['ir_per_wait']:,.0f}", through(how, fx[how]["native"])]
                  for how in WAITS if how in fx]
    rounds = len([m for m in ch["measurements"]
                  if m["method"] == REFERENCE and m["mode"] == "throughput" and m["size"] == 64])
    return dict(ch, rows=rows, futex_rows=futex_rows, ratio=fmt_ratio(fx["ratio"]),
                raw_ratio=fmt_ratio(fx["raw_ratio"]) if "raw" in fx else None,
                floor_ratio=fmt_ratio(fx["floor_ratio"]) if "raw" in fx else None,
                rounds=rounds, targets=targets(res, ctx))
