"""What every part shares: paths, the servers' processes, ports, pinning, /proc readings, the
noise meter, the load generator and statistics."""

import os
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
BUILD = ROOT / "build" / "bench"
SERVER_CPU = 1
CLIENT_CPU = 0
HZ = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A failed measurement: the run stops and exits non-zero."""


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def relative(path):
    """A path as the report shows it: relative to the repository."""
    return str(path).replace(str(ROOT) + "/", "")


# --------------------------------------------------------------------------------------------
# Servers and processes: every child is tracked and killed on any exit path.

class Server:
    """A server as a part runs it: `argv` holds "{port}" where the port goes."""

    def __init__(self, name, argv, protocol="tcp"):
        self.name = name
        self.argv = argv
        self.protocol = protocol

    def command(self, port):
        return [str(a).replace("{port}", str(port)) for a in self.argv]

    @property
    def slug(self):
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


LIVE = set()


def boost():
    """Runs in each child before exec: its own session (start_new_session) is its own scheduler
    autogroup, so nice alone would only rank it against itself. Raising the group's and the
    process's priority keeps other work on a shared machine from preempting a measurement."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")
    except OSError:
        pass
    try:
        os.nice(-20)
    except OSError:
        pass


def spawn(argv, cpu=None, **options):
    """Starts a tracked child in a session of its own, pinned to `cpu` (a CPU or a taskset
    list) unless it is None."""
    full = ([] if cpu is None else ["taskset", "-c", str(cpu)]) + [str(a) for a in argv]
    proc = subprocess.Popen(full, start_new_session=True, preexec_fn=boost, **options)
    LIVE.add(proc)
    return proc


def stop(proc, grace=5.0, sig=signal.SIGTERM):
    """`sig` (SIGTERM), then SIGKILL after `grace` seconds. Returns the exit status."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    LIVE.discard(proc)
    return proc.returncode


def kill_all(*_):
    for proc in list(LIVE):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        LIVE.discard(proc)


_next_port = [20000 + (os.getpid() * 7) % 8000]


def fresh_port():
    """A port no socket holds now, below the ephemeral range so no client connection takes it."""
    for _ in range(1000):
        _next_port[0] = _next_port[0] + 1 if _next_port[0] < 32000 else 20000
        port = _next_port[0]
        ok = True
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise BenchError("no free port")


def udp_bound(port):
    """Whether any socket is bound to UDP `port`: IPv4, or IPv6 (ringio's udp_echo binds the
    dual-stack wildcard `[::]`, which /proc/net/udp does not list)."""
    hexport = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                if any(line.split()[1].endswith(hexport) for line in f.readlines()[1:]):
                    return True
        except FileNotFoundError:
            pass  # no IPv6 in this kernel
    return False


def tail(path, lines=8):
    try:
        return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class ServerRun:
    """One started server: `with ServerRun(server, logdir) as run: ... run.port ...`. On leaving,
    SIGTERM (or SIGKILL with kill=True, for a server whose clean-up is not measured and may be
    slow)."""

    def __init__(self, server, logdir, wrapper=(), ready_timeout=30.0, cpus=SERVER_CPU,
                 kill=False):
        self.server = server
        self.port = fresh_port()
        self.log = Path(logdir) / f"{server.slug}.log"
        self.wrapper = list(wrapper)
        self.ready_timeout = ready_timeout
        self.cpus = cpus
        self.kill = kill

    def __enter__(self):
        with open(self.log, "ab") as out:
            self.proc = spawn(self.wrapper + self.server.command(self.port), self.cpus,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + self.ready_timeout
        while not self.listening():
            if self.proc.poll() is not None:
                raise BenchError(f"{self.server.name} exited with {self.proc.returncode} before "
                                 f"listening; log: {tail(self.log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.server.name} did not listen on port {self.port} within "
                                 f"{self.ready_timeout} s")
            time.sleep(0.05)
        return self

    def listening(self):
        if self.server.protocol == "udp":
            return udp_bound(self.port)
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    @property
    def pid(self):
        """The server's own process: the last of the chain that taskset and a wrapper exec."""
        return self.proc.pid

    def alive_or_fail(self):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.server.name} exited with {self.proc.returncode} during the "
                             f"load; log: {tail(self.log)}")

    def __exit__(self, *exc):
        stop(self.proc, sig=signal.SIGKILL if self.kill else signal.SIGTERM)
        return False


# --------------------------------------------------------------------------------------------
# /proc

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS")


def descriptor_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def machine_ticks(cpu=None):
    """Ticks spent on the whole machine, or on one CPU, doing anything but idling, waiting for
    I/O or being stolen by the hypervisor."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0] == name:
                v = [int(x) for x in fields[1:]]
                return sum(v[:3]) + v[5] + v[6]  # user nice system, irq softirq
    raise BenchError(f"no {name} in /proc/stat")


def raise_descriptor_limit():
    """Every child inherits the hard limit: the parts hold up to 16,000 connections a process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def descriptor_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------------------------
# Noise: a timed run during which other processes were busy is discarded and repeated.

NOISE = {"waited": 0.0, "runs": 0, "discarded": 0, "accepted_noisy": 0, "foreign": []}


def busy_cpus(interval=0.3):
    """CPUs' worth of work done by anything on the machine over `interval` seconds."""
    b0, t0 = machine_ticks(), time.monotonic()
    time.sleep(interval)
    return (machine_ticks() - b0) / HZ / (time.monotonic() - t0)


def wait_for_quiet(cfg):
    """Waits until the machine is idle, for at most cfg.quiet_timeout seconds per run and
    cfg.quiet_budget seconds in all."""
    budget = max(0.0, min(cfg.quiet_timeout, cfg.quiet_budget - NOISE["waited"]))
    deadline = time.monotonic() + budget
    start = time.monotonic()
    while busy_cpus() > 0.15 and time.monotonic() < deadline:
        time.sleep(1.0)
    NOISE["waited"] += time.monotonic() - start


class Meter:
    """Measures how much CPU the rest of the machine used during a timed run: all busy time
    (softirq included, where loopback TCP does much of its work) less what the server and the
    runner's reaped children (the load generator, the compiler) used."""

    def __init__(self, server_pid=None, cpu=None):
        self.server_pid = server_pid
        self.cpu = cpu  # watch only this CPU, where a pinned single-threaded job runs

    def _children(self):
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def __enter__(self):
        self.t0 = time.monotonic()
        self.m0 = machine_ticks(self.cpu)
        self.c0 = self._children()
        self.s0 = cpu_ticks(self.server_pid) if self.server_pid else 0
        return self

    def stop(self):
        self.wall = time.monotonic() - self.t0
        machine = (machine_ticks(self.cpu) - self.m0) / HZ
        children = self._children() - self.c0
        self.server = (cpu_ticks(self.server_pid) - self.s0) / HZ if self.server_pid else 0.0
        # The share of one CPU that others used, averaged over the run.
        self.foreign = max(0.0, machine - children - self.server) / self.wall

    def __exit__(self, *exc):
        return False


def measured(cfg, what, attempt_fn):
    """Runs attempt_fn() -> (value, meter) until a run sees no interference, at most
    cfg.attempts times; the last attempt is kept whatever it saw."""
    for attempt in range(1, cfg.attempts + 1):
        wait_for_quiet(cfg)
        value, meter = attempt_fn()
        NOISE["runs"] += 1
        if meter.foreign <= cfg.foreign_limit:
            NOISE["foreign"].append(meter.foreign)
            return value, meter
        if attempt < cfg.attempts:
            NOISE["discarded"] += 1
            log(f"{what}: discarded, other processes used {meter.foreign:.0%} of a CPU")
        else:
            NOISE["accepted_noisy"] += 1
            NOISE["foreign"].append(meter.foreign)
            log(f"{what}: kept after {attempt} attempts, others used {meter.foreign:.0%} of a CPU")
    return value, meter


def measured_rate(cfg, what, server, logdir, load, cpus=SERVER_CPU):
    """One round of `server` under a load: `load(run)` gives its rate, measured as `measured`
    measures; returns (rate, meter), the meter holding the server's CPU use."""

    def attempt():
        with ServerRun(server, logdir, cpus=cpus) as run:
            with Meter(run.pid) as meter:
                rate = load(run)
                meter.stop()
            run.alive_or_fail()
        return rate, meter

    return measured(cfg, what, attempt)


def keep_rate(entry, what, rate, meter):
    """Adds a round's rate and server CPU use to `entry` ({"rates": [], "cpu": []}), and says so."""
    busy = meter.server / meter.wall
    entry["rates"].append(rate)
    entry["cpu"].append(busy)
    log(f"{what}: {rate:,.0f}/s, server CPU {busy:.0%}, others {meter.foreign:.0%}")


# --------------------------------------------------------------------------------------------
# The load generator: tests/load/load_client.cpp, built into build/bench.

LOAD_CLIENT = BUILD / "load_client"


def parse_fields(text):
    return {k: float(v) for k, v in re.findall(r"(\w+)=(-?[0-9.]+)", text)}


def load_argv(mode, port, *options, cpu=CLIENT_CPU):
    """load_client's command, pinned to the client's CPU unless cpu is None."""
    pin = [] if cpu is None else ["--cpu", cpu]
    return [str(a) for a in [LOAD_CLIENT, mode, port, *pin, *options]]


def rate_load(run, connections, size, seconds, warmup, cpu=CLIENT_CPU, groups=1, udp=False):
    """Round trips per second of `groups` load generators at once against `run`, each with
    `connections` of `size` bytes for `warmup` then `seconds`."""
    argv = load_argv("rate", run.port, "--connections", connections, "--size", size,
                     "--seconds", seconds, "--warmup", warmup, *(["--udp"] if udp else []),
                     cpu=cpu)
    with ThreadPoolExecutor(groups) as pool:
        runs = pool.map(lambda _: run_load(argv, seconds + warmup + 60), range(groups))
        return sum(f["rate"] for f in runs)


def run_load(argv, timeout, want="rate"):
    """Runs the load generator to its end; returns the fields of its last line, which must hold
    `want`. Any failure of the generator fails the run."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True, preexec_fn=boost)
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator timed out: {shlex.join(argv)}")
    if done.returncode != 0:
        raise BenchError(f"load generator failed ({done.returncode}): {shlex.join(argv)}\n"
                         f"{done.stderr.strip()}")
    lines = done.stdout.strip().splitlines()
    fields = parse_fields(lines[-1]) if lines else {}
    if want not in fields:
        raise BenchError(f"no {want}= from {shlex.join(argv)}: {done.stdout!r}")
    fields["stderr"] = done.stderr.strip()
    return fields


class Load:
    """A load generator that the caller talks to while it runs: `with Load(argv) as load:
    load.wait_line("idle_ready")`. Stopped with SIGTERM on leaving; a non-zero status then fails
    the run."""

    def __init__(self, argv, stdin=False):
        self.argv = argv
        self.stdin = stdin

    def __enter__(self):
        self.proc = spawn(self.argv, stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def wait_line(self, prefix, timeout=300):
        """Reads lines until one starts with `prefix` (readline blocks, but the generator's own
        --stall ends it if it stops making progress); returns its fields."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return parse_fields(line)
        stop(self.proc)
        raise BenchError(f"no {prefix!r} line from {shlex.join(self.argv)}: "
                         f"{self.proc.stderr.read().strip()}")

    def send_line(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def __exit__(self, *exc):
        status = stop(self.proc)
        if status != 0 and exc[0] is None:
            raise BenchError(f"load generator exited with {status}: {shlex.join(self.argv)}\n"
                             f"{self.proc.stderr.read().strip()}")
        return False


def wait_descriptors(run, count, timeout=120):
    """Waits until the server holds at least `count` descriptors: it has accepted them all."""
    deadline = time.monotonic() + timeout
    while descriptor_count(run.pid) < count:
        run.alive_or_fail()
        if time.monotonic() > deadline:
            raise BenchError(f"{run.server.name} holds {descriptor_count(run.pid)} descriptors "
                             f"after {timeout} s, not {count}")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Statistics

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def rotate(items, r):
    r %= len(items)
    return items[r:] + items[:r]


def paired(point, mine, other):
    """`mine`'s rate over `other`'s, round by round (the servers of one round run within a
    minute of each other, so a slow spell of the host weighs on both sides of each ratio):
    the median of those ratios, and in how many rounds `mine` was ahead."""
    each = ratios(point[mine]["rates"], point[other]["rates"])
    return median(each), sum(r > 1 for r in each), len(each)


def ratios(mine, theirs):
    """Round by round: the servers of one round run within a minute of each other."""
    return [a / b for a, b in zip(mine, theirs)]
