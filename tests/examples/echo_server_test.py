"""echo_server driven by plain Python sockets, in each of the ways it can run.

Usage: echo_server_test.py CASE ECHO_SERVER [server options...]; every case but usage runs the
server with the options given (--simple, --threads N).
"""

import errno
import fcntl
import os
import random
import resource
import socket
import threading

import support
from support import Failure, check, check_equal

USAGE = b"usage: echo_server PORT [--threads N] [--simple]\n"


def start(binary, port, options):
    # However many threads, one listening socket: the server is ready once it is bound.
    return support.server([binary, port, *options], port, "tcp")


def client(host, port, seed, failures):
    rng = random.Random(seed)
    try:
        with socket.create_connection((host, port), timeout=20) as sock:
            for size in (1, rng.randint(2, 4096), rng.randint(4097, 1 << 20)):
                payload = rng.randbytes(size)
                if support.echo_exchange(sock, payload) != payload:
                    raise AssertionError(f"echo mismatch for {size} bytes")
    except Exception as error:  # reported by the main thread
        failures.append(f"{host} client {seed}: {error!r}")


def every_byte_back(binary, *options):
    # 40 concurrent IPv4 and IPv6 clients, 1 byte to 1 MiB each message; SIGTERM, then status 0.
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port, options) as server:
        failures = []
        clients = [
            threading.Thread(target=client, args=(host, port, seed, failures))
            for seed in range(20)
            for host in ("127.0.0.1", "::1")
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        check_equal(failures, [], f"client failures\n{server.describe()}")
        server.stop()


def check_second_server_fails(binary, port, options, what):
    with support.Process([binary, port, *options]) as second:
        status = second.finish(timeout=15)
        support.check_one_error_line(status, second.output(), second.errors(), what,
                                     ["echo_server", "Address already in use", str(port)])


def a_second_server_fails(binary, *options):
    # A second server on the port, run the same way or with several threads, reports the busy
    # port rather than sharing it; the first goes on serving.
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port, options) as server:
        check_second_server_fails(binary, port, options, "a second server run the same way")
        check_second_server_fails(binary, port, ["--threads", "2"], "a second server with two threads")
        with socket.create_connection(("::1", port), timeout=10) as sock:
            check_equal(support.echo_exchange(sock, b"still mine"), b"still mine", "the echo")
        server.stop()


def the_port_is_not_shared(binary, *options):
    # A socket of another program that sets SO_REUSEPORT cannot bind the port the server holds,
    # over IPv6 or IPv4, so it cannot take a share of its connections.
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port, options) as server:
        for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
            with socket.socket(family, socket.SOCK_STREAM) as foreign:
                foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    foreign.bind((address, port))
                except OSError as error:
                    check_equal(error.errno, errno.EADDRINUSE, f"binding {address} port {port}")
                else:
                    raise Failure(f"a SO_REUSEPORT socket bound {address} port {port} beside the server")
        server.stop()


def stopped_once_bound(binary, *options):
    # A SIGTERM as soon as the port is bound, while the workers may still be setting up (with
    # 16 threads, for longer): the signals were blocked before the bind, so it is a stop
    # (status 0), never a kill.
    many = ["--threads", "16", *(["--simple"] if "--simple" in options else [])]
    for each in (options, many, many, many):
        port = support.free_port(socket.SOCK_STREAM)
        with start(binary, port, each) as server:
            server.stop()


def busy_port(binary, *options):
    support.check_busy_port(binary, socket.SOCK_STREAM, *options)


def usage(binary):
    # Ports as the other examples take them (1 to 65535, digits only); the options once each,
    # after the port.
    support.check_usage(
        binary,
        USAGE,
        [[], [""], ["0"], ["http"], ["65536"], ["-1"], ["+80"], ["80x"], ["1", "2"], ["1", "--fast"],
         ["1", "--threads"], ["1", "--threads", "0"], ["1", "--threads", "257"], ["1", "--threads", "x"],
         ["1", "--simple", "--simple"], ["1", "--threads", "2", "--threads", "3"], ["--simple", "1"],
         ["1", "--threads=2"]],
    )


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (every_byte_back, a_second_server_fails, the_port_is_not_shared,
                         stopped_once_bound, busy_port, usage)
        }
    )
