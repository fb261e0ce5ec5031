#!/usr/bin/env python3
"""The example servers under load, under faults that clients provoke, and over time.

Usage: server_test.py CASE --server BINARY [--client LOAD_CLIENT] [--server-arg ARG]...
                          [--client-arg ARG]... [--seconds N] [--rss-growth-kib N]
                          [--connections N] [--latency-ms MS] [--rss-mib MIB]
                          [--stop-seconds S] [--cost-ratio R]

Each case starts the server on a free port, takes its descriptor count once it is idle, does
its work, then checks that the server is still serving, that its descriptor count came back to
the idle one, and that SIGTERM stops it with status 0. See README.md beside this file for what
each case proves.
"""

import argparse
import os
import random
import resource
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import support  # noqa: E402  (tests/examples/support.py: servers in the background, checks)
from support import Failure, check, check_equal  # noqa: E402

# The descriptors 1,000 connections need on each side, and some room.
DESCRIPTORS = 4096


def raise_descriptor_limit(needed=DESCRIPTORS):
    """Raises this process's RLIMIT_NOFILE, which the servers and clients it starts inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError):
        if hard < needed:
            print(f"SKIPPED: RLIMIT_NOFILE is capped at {hard}, fewer than the {needed} needed")
            sys.exit(0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def descriptors(pid):
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def describe_descriptors(pid):
    names = []
    for fd in descriptors(pid):
        try:
            names.append(f"{fd}:{os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    return " ".join(names)


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure(f"no VmRSS in /proc/{pid}/status")


def wait_descriptors(server, baseline, what):
    """Waits until the server holds exactly the descriptors it held when idle."""
    try:
        support.wait_until(lambda: len(descriptors(server.pid)) == baseline, what, timeout=15)
    except Failure:
        raise Failure(
            f"{what}: the server holds {len(descriptors(server.pid))} descriptors, "
            f"{baseline} when idle: {describe_descriptors(server.pid)}\n{server.describe()}"
        ) from None


def start(arguments, port, protocol, **options):
    """Starts the server and returns once it has served a first client: a port is bound before
    a server has built all it holds (its threads' rings, their wake-ups, its signals), and the
    descriptor count each case takes as the idle one must come after."""
    server = support.server([arguments.server, port, *arguments.server_arg], port, protocol,
                            **options)
    try:
        if protocol == "tcp":
            with connect(port) as s:  # echo_server sends nothing back; tcp_server prints nothing
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(10)
                s.sendto(b"probe", ("127.0.0.1", port))
                check_equal(s.recv(64), b"probe", "udp_echo's answer to a first datagram")
        # The first client's descriptor goes once the server has seen its end.
        counts = []
        support.wait_until(lambda: counts.append(len(descriptors(server.pid))) or
                           counts[-3:] == [counts[-1]] * 3, "a steady descriptor count")
    except BaseException:
        server.__exit__(None, None, None)
        raise
    return server


def stop(server):
    check(server.running(), f"the server died\n{server.describe()}")
    server.stop(signal.SIGTERM)


def client_command(arguments, *argv):
    """load_client's command line: `argv`, then the test's --client-arg values."""
    return [arguments.client, *argv, *arguments.client_arg]


def run_client(arguments, *argv, timeout=None):
    """Runs load_client to its end; fails with its output unless it exits 0."""
    with support.Process(client_command(arguments, *argv)) as client:
        status = client.finish(timeout=timeout or support.DEADLINE - 5)
        check_equal(status, 0, f"load_client's exit status\n{client.describe()}")
        sys.stdout.write(client.output().decode())
    return client


def connect(port, v6=False, timeout=10, receive_buffer=None):
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if receive_buffer is not None:
            # Before connecting, so that the window the server sees is small from the start.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        s.settimeout(timeout)
        s.connect(("::1" if v6 else "127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def echo_once(port, size, seed, v6=False):
    """One healthy client: `size` random bytes must come back whole."""
    payload = random.Random(seed).randbytes(size)
    with connect(port, v6) as s:
        received = support.echo_exchange(s, payload)
        s.shutdown(socket.SHUT_WR)
        check_equal(s.recv(1), b"", "what a healthy client reads after its echo and half-close")
    check(received == payload, f"a healthy client's {size} bytes came back different")


def abort(s):
    """Closes with a reset (RST) instead of an orderly end: SO_LINGER with a zero timeout."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def in_threads(jobs):
    """Runs each job in its own thread; raises the first failure once all have finished."""
    errors = []

    def guarded(job):
        try:
            job()
        except Exception as error:  # reported below, with the others
            errors.append(f"{job.__name__}: {error!r}" if not isinstance(error, Failure) else str(error))

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(support.DEADLINE)
    if errors:
        raise Failure(f"{len(errors)} of {len(jobs)} clients failed; the first: {errors[0]}")


# Load ------------------------------------------------------------------------------------------


def tcp_load(arguments):
    """load_client's messages against echo_server: every byte of every connection verified."""
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        run_client(arguments, "messages", port)
        wait_descriptors(server, baseline, "after the load")
        echo_once(port, 65536, 1)
        stop(server)
        check_equal(server.errors(), b"", "echo_server's stderr")


def udp_load(arguments):
    """load_client's datagrams against udp_echo: every datagram answered whole, or counted lost."""
    port = support.free_port(socket.SOCK_DGRAM)
    with start(arguments, port, "udp") as server:
        baseline = len(descriptors(server.pid))
        run_client(arguments, "datagrams", port)
        check_equal(len(descriptors(server.pid)), baseline, "udp_echo's descriptors after the load")
        stop(server)
        check_equal(server.errors(), b"", "udp_echo's stderr")


def stop_under_load(arguments, protocol):
    """SIGTERM while load_client is mid-run: the server exits 0 at once, whatever was in flight
    (a signal during a send once left udp_echo retrying on a closed socket forever)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    port = support.free_port(kind)
    with start(arguments, port, protocol) as server:
        mode = "datagrams" if protocol == "udp" else "messages"
        with support.Process(client_command(arguments, mode, port)) as client:
            time.sleep(1.0)
            check(client.running(), f"the load ended before the stop\n{client.describe()}")
            stop(server)


def udp_stop_under_load(arguments):
    """udp_echo stopped under load."""
    stop_under_load(arguments, "udp")


def tcp_stop_under_load(arguments):
    """echo_server stopped under load."""
    stop_under_load(arguments, "tcp")


def soak(arguments):
    """echo_server under steady load for --seconds: resident memory and descriptors stay flat."""
    seconds = arguments.seconds
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        command = [arguments.client, "messages", port, "--duration", seconds, *arguments.client_arg]
        samples = []  # (seconds since the start, resident KiB, descriptors)
        begin = time.monotonic()
        with support.Process(command) as client:
            while client.running():
                check(server.running(), f"the server died under load\n{server.describe()}")
                samples.append((time.monotonic() - begin, resident_kib(server.pid), len(descriptors(server.pid))))
                time.sleep(0.25)
            check_equal(client.finish(), 0, f"load_client's exit status\n{client.describe()}")
            sys.stdout.write(client.output().decode())
        wait_descriptors(server, baseline, "once the soak's clients have gone")
        # The first fifth warms up (allocator arenas, buffer queues, the accept backlog); after
        # it, the highest resident size of the first and of the last few seconds must agree.
        warm = seconds / 5
        window = max(1.0, seconds / 5)
        early = [rss for t, rss, _ in samples if warm <= t <= warm + window]
        late = [rss for t, rss, _ in samples if seconds - window <= t <= seconds]
        check(early and late, f"too few samples over {seconds} s: {samples!r}")
        growth = max(late) - max(early)
        print(
            f"soak: {seconds} s, {len(samples)} samples; resident {max(early)} KiB after warm-up, "
            f"{max(late)} KiB at the end (growth {growth} KiB, at most {arguments.rss_growth_kib}); "
            f"{max(fds for _, _, fds in samples)} descriptors at the most, {baseline} idle before "
            f"and after"
        )
        check(growth <= arguments.rss_growth_kib, f"resident memory grew by {growth} KiB: {samples!r}")
        echo_once(port, 65536, 1)
        stop(server)
        check_equal(server.errors(), b"", "echo_server's stderr")


# Faults ----------------------------------------------------------------------------------------


def reset_mid_stream(port, seed):
    """Sends, reads part of the echo, then resets the connection while the server writes."""
    def job():
        with connect(port, v6=seed % 2 == 1) as s:
            s.sendall(random.Random(seed).randbytes(256 * 1024))
            s.recv(4096)
            abort(s)

    job.__name__ = f"reset_mid_stream {seed}"
    return job


def half_close(port, seed):
    """Sends, half-closes, and still reads the whole echo, then the server's end."""
    def job():
        payload = random.Random(seed).randbytes(200 * 1024 + seed)
        with connect(port, v6=seed % 2 == 1) as s:
            sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            sender.start()
            received = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
            sender.join()
        check(bytes(received) == payload, f"half-close {seed}: {len(received)} bytes came back, "
                                          f"not the {len(payload)} sent")

    job.__name__ = f"half_close {seed}"
    return job


def vanish_while_written_to(port, seed):
    """Sends much more than the buffers hold and never reads: the server's write blocks, and
    the client closes with the echo unread (the kernel answers with a reset): EPIPE or
    ECONNRESET for the server's pending write, never SIGPIPE."""
    def job():
        with connect(port, v6=seed % 2 == 1, receive_buffer=4096) as s:
            s.settimeout(0.5)
            chunk = random.Random(seed).randbytes(256 * 1024)
            # 8 MiB: twice what the server's send buffer can grow to (net.ipv4.tcp_wmem's 4 MiB
            # by default), so that its echo is still being written when the client goes.
            try:
                for _ in range(32):
                    s.sendall(chunk)
            except socket.timeout:
                pass  # both directions are full: the server is blocked writing to us
            time.sleep(0.05)

    job.__name__ = f"vanish_while_written_to {seed}"
    return job


def healthy(port, seed):
    def job():
        echo_once(port, 100 * 1024 + seed, seed, v6=seed % 2 == 1)

    job.__name__ = f"healthy {seed}"
    return job


def echo_faults(arguments):
    """echo_server keeps serving through resets, half-closes and clients that vanish while it
    writes to them, and holds no descriptor for any of them afterwards."""
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        echo_once(port, 1024, 0)
        wait_descriptors(server, baseline, "after a first client")
        jobs = []
        for seed in range(12):
            jobs += [reset_mid_stream(port, seed), half_close(port, seed),
                     vanish_while_written_to(port, seed), healthy(port, seed)]
        random.Random(5).shuffle(jobs)
        in_threads(jobs)
        check(server.running(), f"echo_server died\n{server.describe()}")
        echo_once(port, 1 << 20, 99)
        wait_descriptors(server, baseline, "after the faulty clients")
        stop(server)
        check_equal(server.errors(), b"", "echo_server's stderr")


def stalled_reader(arguments):
    """A client that sends without ever reading holds only a few of echo_server's shared
    buffers: the replies it does not read stop its own connection, and healthy clients go on
    echoing through the same buffer ring meanwhile."""
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        with connect(port, receive_buffer=4096) as stalled:
            stalled.settimeout(1)
            chunk = random.Random(7).randbytes(1 << 20)
            # 64 MiB: far more than the socket buffers on both sides and all 4 MiB of the
            # server's buffers together, so that the server stops receiving from it.
            sent = 0
            try:
                for _ in range(64):
                    stalled.sendall(chunk)
                    sent += len(chunk)
            except socket.timeout:
                pass  # both directions are full
            check(sent < 64 << 20, "the stalled client sent 64 MiB: nothing held it back")
            in_threads([healthy(port, seed) for seed in range(8)])
            check(server.running(), f"echo_server died\n{server.describe()}")
        wait_descriptors(server, baseline, "after the stalled client")
        stop(server)
        check_equal(server.errors(), b"", "echo_server's stderr")


def tcp_server_faults(arguments):
    """tcp_server keeps printing other clients' lines through resets, half-closes and clients
    that vanish, and holds no descriptor for any of them afterwards."""
    port = support.free_port(socket.SOCK_STREAM)
    lines = []

    def resetter(seed):
        def job():
            with connect(port, v6=seed % 2 == 1) as s:
                s.sendall(b"x" * 100000)
                abort(s)

        return job

    def half_closer(seed):
        def job():
            with connect(port, v6=seed % 2 == 1) as s:
                s.sendall(b"half-closing client %d\n" % seed)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                check_equal(s.recv(1), b"", "what a half-closed client of tcp_server reads")

        return job

    def speaker(seed):
        def job():
            with connect(port, v6=seed % 2 == 1) as s:
                s.sendall(b"healthy client %d\n" % seed)

        return job

    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        jobs = []
        for seed in range(10):
            jobs += [resetter(seed), half_closer(seed), speaker(seed)]
            lines += [b"half-closing client %d\n" % seed, b"healthy client %d\n" % seed]
        random.Random(3).shuffle(jobs)
        in_threads(jobs)
        server.wait_for_output(lambda out: out.count(b"connection terminated\n") == 31, "31 farewells (one for the first client)")
        for line in lines:
            check(line in server.output(), f"{line!r} not printed\n{server.describe()}")
        wait_descriptors(server, baseline, "after the faulty clients")
        for line in server.errors().splitlines():
            check(b"Connection reset by peer" in line, f"unexpected stderr line {line!r}")
        stop(server)


def echo_out_of_descriptors(arguments):
    """echo_server at its descriptor limit: accept reports EMFILE, backs off without spinning,
    and takes the waiting connections once descriptors are free again, by clients leaving and
    by the limit being raised."""
    port = support.free_port(socket.SOCK_STREAM)
    # The limit is set before the server starts: io_uring reads RLIMIT_NOFILE when it prepares
    # an accept, so a multishot accept armed earlier would go on with the old limit.
    limit = 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        server = start(arguments, port, "tcp", env=support.descriptor_starved_environment())
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with server:
        baseline = len(descriptors(server.pid))
        room = limit - len([fd for fd in descriptors(server.pid) if fd < limit])
        check(room > 4, f"the server starts with too few free descriptors: {describe_descriptors(server.pid)}")
        began = time.monotonic()
        clients = [connect(port) for _ in range(room + 4)]
        for i, s in enumerate(clients):
            s.sendall(b"client %d\n" % i)
        served = set()

        def answered(s):
            s.settimeout(0.01)
            try:
                return s.recv(100) != b""
            except socket.timeout:
                return False

        def serve_count():
            served.update(i for i, s in enumerate(clients) if i not in served and answered(s))
            return len(served)

        support.wait_until(lambda: b"Too many open files" in server.errors(), "EMFILE from accept")
        support.wait_until(lambda: serve_count() >= room, f"the {room} clients there is room for")
        time.sleep(0.3)
        check_equal(serve_count(), room, "clients echoed while the server is out of descriptors")
        # Two clients leave: their descriptors go back, and two waiting connections come in.
        for i in sorted(served)[:2]:
            clients[i].close()
        support.wait_until(lambda: serve_count() >= room + 2, "two more clients once two have left")
        time.sleep(0.3)
        check_equal(serve_count(), room + 2, "clients echoed once two have left")
        # The limit goes up: the last two come in.
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (hard, hard))
        support.wait_until(lambda: serve_count() == room + 4, "every client once the limit is raised")
        elapsed = time.monotonic() - began
        for s in clients:
            s.close()
        wait_descriptors(server, baseline, "after every client has left")
        errors = server.errors().splitlines()
        check(len(errors) > 0, "no EMFILE reported")
        for line in errors:
            check_equal(line, b"echo_server: accept: Too many open files", "each stderr line")
        # One retry every 50 ms at most: a spinning accept loop would print thousands of lines.
        check(len(errors) <= elapsed / 0.05 + 5, f"{len(errors)} EMFILE reports in {elapsed:.1f} s")
        echo_once(port, 65536, 1)
        stop(server)


# At scale --------------------------------------------------------------------------------------


def client_fields(client):
    """The `key=value` figures of load_client's last line."""
    lines = client.output().decode().strip().splitlines()
    return {k: float(v) for k, v in re.findall(r"(\w+)=(-?[0-9.]+)", lines[-1] if lines else "")}


def finish_client(client, timeout):
    """Waits for load_client's end; fails with its output unless it exits 0."""
    check_equal(client.finish(timeout=timeout), 0, f"load_client's exit status\n{client.describe()}")
    sys.stdout.write(client.output().decode())
    return client_fields(client)


def stalled_peers(arguments):
    """1,000 peers send without pause and never read, until every buffer between them and the
    server is full; a healthy client's echo meanwhile stays fast, and the server's memory stays
    bounded. Its 100 echoes of 128 bytes, 5 ms apart, are timed: their p99 (which one hiccup of
    the machine does not move) must be under --latency-ms, and the server's resident memory under
    --rss-mib."""
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        command = client_command(arguments, "stall", port, "--peers", arguments.connections,
                                 "--echoes", 100, "--size", 128, "--echo-timeout", 5,
                                 "--server-pid", server.pid)
        with support.Process(command) as client:
            fields = finish_client(client, timeout=40)
        check(not fields["timed_out"],
              f"the healthy client's echo {fields['completed']:.0f} did not come back within 5 s "
              f"while {arguments.connections} peers stalled\n{client.describe()}")
        p99_ms = fields["p99_us"] / 1000
        check(p99_ms < arguments.latency_ms,
              f"the healthy client's echoes took {p99_ms:.1f} ms at the 99th percentile "
              f"(median {fields['p50_us'] / 1000:.1f} ms, at most {fields['max_us'] / 1000:.1f} ms), "
              f"more than {arguments.latency_ms} ms")
        rss_mib = max(fields["server_rss_stalled_kib"], fields["server_rss_after_kib"]) / 1024
        check(rss_mib < arguments.rss_mib,
              f"the server's resident memory reached {rss_mib:.1f} MiB with the peers stalled, "
              f"more than {arguments.rss_mib} MiB")
        wait_descriptors(server, baseline, "once the peers have gone")
        echo_once(port, 65536, 1)
        stop(server)
        check_equal(server.errors(), b"", "echo_server's stderr")


def stop_with_connections(arguments):
    """SIGTERM with --connections connections open: the server closes them all and exits 0
    within --stop-seconds. load_client holds them, each having echoed one round trip first
    unless a --client-arg says otherwise (tcp_server echoes nothing); the server is stopped once
    it holds a descriptor for each."""
    count = arguments.connections
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        command = client_command(arguments, "idle", port, "--connections", count, "--stall", 30)
        with support.Process(command) as client:
            client.wait_for_output(lambda out: b"idle_ready" in out, "the connections",
                                   timeout=30)
            support.wait_until(lambda: len(descriptors(server.pid)) >= count,
                               f"the server to hold {count} connections", timeout=30)
            farewells = server.output().count(b"connection terminated\n")  # a readiness probe's
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            # Past the limit, a while longer: how long it does take is worth saying.
            try:
                status = server.process.wait(arguments.stop_seconds + 20)
            except subprocess.TimeoutExpired:
                status = None
            elapsed = time.monotonic() - began
        check(status is not None, f"still running {elapsed:.0f} s after SIGTERM with {count} "
                                  f"connections open")
        print(f"stopped {elapsed:.2f} s after SIGTERM with {count} connections open")
        check(elapsed <= arguments.stop_seconds,
              f"exited {elapsed:.2f} s after SIGTERM with {count} connections open, more than "
              f"{arguments.stop_seconds} s")
        check_equal(status, 0, f"exit status after SIGTERM\n{server.describe()}")
        if arguments.farewells:  # one each, however the server batches them on a stop
            server.finish(10)
            check_equal(server.output().count(b"connection terminated\n") - farewells, count,
                        "farewells printed after SIGTERM")


def close_cost(arguments):
    """The server's CPU time per connection that lives for one echo (connect, echo 128 bytes,
    close) with --connections idle connections held open is at most --cost-ratio times that
    with none: no work per connection that grows with the connections already held. One server,
    3 s of cycles alone, then 3 s with the idle connections open (user and system time from
    /proc, read by load_client before and after the cycles)."""
    port = support.free_port(socket.SOCK_STREAM)
    with start(arguments, port, "tcp") as server:
        baseline = len(descriptors(server.pid))
        costs = {}
        for idle in (0, arguments.connections):
            command = client_command(arguments, "cycle", port, "--seconds", 3, "--size", 128,
                                     "--server-pid", server.pid, "--stall", 20,
                                     *(["--idle", idle] if idle else []))
            with support.Process(command) as client:
                fields = finish_client(client, timeout=40)
            costs[idle] = fields["server_cpu_us_per_cycle"]
            check(server.running(), f"the server died\n{server.describe()}")
        ratio = costs[arguments.connections] / costs[0]
        print(f"close cost: {costs[0]:.1f} us of server CPU per cycle alone, "
              f"{costs[arguments.connections]:.1f} us with {arguments.connections} idle "
              f"connections: {ratio:.2f}x")
        check(ratio <= arguments.cost_ratio,
              f"a connect/echo/close cycle cost {ratio:.1f}x more server CPU with "
              f"{arguments.connections} idle connections open "
              f"({costs[arguments.connections]:.1f} us) than with none ({costs[0]:.1f} us), "
              f"more than {arguments.cost_ratio}x")
        wait_descriptors(server, baseline, "once the idle connections have gone")
        echo_once(port, 65536, 1)
        stop(server)


# Bad input -------------------------------------------------------------------------------------


def usage(arguments):
    """The servers benchmarks use refuse bad arguments with their usage line and status 2."""
    name = os.path.basename(arguments.server)
    if name == "echo_server":
        support.check_usage(
            arguments.server,
            b"usage: echo_server PORT [--threads N] [--simple]\n",
            [[], [""], ["http"], ["65536"], ["-1"], ["80x"], ["1", "--threads"], ["1", "--threads", "0"],
             ["1", "--threads", "257"], ["1", "--fast"], ["1", "2"]],
        )
    else:
        support.check_usage(
            arguments.server,
            b"usage: udp_echo PORT\n",
            [[], [""], ["http"], ["65536"], ["-1"], ["80x"], ["1", "2"]],
        )
    # A port that is taken is one clear line, status 1.
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM if name == "echo_server" else socket.SOCK_DGRAM) as taken:
        taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        taken.bind(("::", 0))
        if name == "echo_server":
            taken.listen()
        port = taken.getsockname()[1]
        status, out, err = support.run([arguments.server, port])
    support.check_one_error_line(status, out, err, "a busy port", ["Address already in use", str(port)])


CASES = {
    case.__name__: case
    for case in (tcp_load, udp_load, udp_stop_under_load, tcp_stop_under_load, soak, echo_faults,
                 stalled_reader, tcp_server_faults, echo_out_of_descriptors, usage,
                 stalled_peers, stop_with_connections, close_cost)
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--server", required=True)
    parser.add_argument("--client")
    parser.add_argument("--server-arg", action="append", default=[])
    parser.add_argument("--client-arg", action="append", default=[])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rss-growth-kib", type=int, default=4096)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rss-mib", type=float, default=64)
    parser.add_argument("--stop-seconds", type=float, default=3)
    parser.add_argument("--cost-ratio", type=float, default=2)
    parser.add_argument("--farewells", action="store_true")
    arguments = parser.parse_args()
    raise_descriptor_limit(max(DESCRIPTORS, arguments.connections + 256))
    # The soak runs longer than a case normally may.
    support.DEADLINE = max(support.DEADLINE, arguments.seconds + 40)

    def expire(signum, frame):
        raise Failure(f"the test took longer than {support.DEADLINE} s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(support.DEADLINE)
    try:
        CASES[arguments.case](arguments)
    except Failure as failure:
        print(f"FAILED: {arguments.case}: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"passed: {arguments.case}")


if __name__ == "__main__":
    main()
