"""work_server, whose work a forked child does through two channels, driven by clients written
with Python's socket module."""

import os
import signal
import socket
import threading
import time

import support
from support import LineClient, check, check_equal


def start(binary):
    port = support.free_port(socket.SOCK_STREAM)
    return support.server([binary, port], port, "tcp"), port


def children(pid):
    """The pids of the processes `pid` has forked and not yet reaped."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listed:
            return [int(child) for child in listed.read().split()]
    except FileNotFoundError:
        return []


def running(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def answers_each_client(binary):
    server, port = start(binary)
    with server:
        check_equal(len(children(server.pid)), 1, "the server's children")
        with LineClient(port) as first, LineClient(port, "::1") as second:
            check_equal(first.ask(b"hello, world\n"), b"dlrow ,olleh\n", "the first answer")
            check_equal(second.ask(b"abc\n"), b"cba\n", "another client's answer")
            check_equal(first.ask(b"\n"), b"\n", "an empty line")
            # The longest line: 248 bytes with its newline, as the record holds 248.
            check_equal(first.ask(b"x" * 246 + b"y\n"), b"y" + b"x" * 246 + b"\n", "a long line")
        errors = []

        def client(i):
            try:
                with LineClient(port) as c:
                    for n in range(50):
                        line = b"client %d line %d" % (i, n)
                        check_equal(c.ask(line + b"\n"), line[::-1] + b"\n", "an answer")
            except Exception as error:  # reported by the main thread
                errors.append(f"client {i}: {error!r}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        check_equal(errors, [], "client errors")
        server.stop()
        check_equal(server.errors(), b"", "stderr")


def more_lines_than_the_channel_holds(binary):
    # 5,000 lines in one send: the channel (64 records) fills, the server's sends wait, and every
    # answer comes back in order.
    server, port = start(binary)
    with server, LineClient(port) as client:
        lines = [b"line %05d" % n for n in range(5000)]
        sender = threading.Thread(target=client.socket.sendall, args=(b"\n".join(lines) + b"\n",))
        sender.start()
        answers = [client.line() for _ in lines]
        sender.join()
        check_equal(answers, [line[::-1] + b"\n" for line in lines], "the answers")
        server.stop()


def stop_ends_the_child(binary):
    server, port = start(binary)
    with server:
        child = children(server.pid)[0]
        with LineClient(port) as client:
            check_equal(client.ask(b"before\n"), b"erofeb\n", "an answer before the stop")
            started = time.monotonic()
            server.stop(signal.SIGINT, within=5)
            check(time.monotonic() - started < 2, "the stop waited")
            check_equal(client.socket.recv(100), b"", "the connection after the stop")
        check(not running(child), f"the child {child} still runs")
        check_equal(server.errors(), b"", "stderr")


def a_dead_child_is_reported(binary):
    server, port = start(binary)
    with server:
        child = children(server.pid)[0]
        with LineClient(port) as client:
            check_equal(client.ask(b"alive\n"), b"evila\n", "an answer before the child dies")
            os.kill(child, signal.SIGKILL)
            status = server.finish(10)
        check_equal(status, 1, f"exit status\n{server.describe()}")
        err = server.errors()
        expected = (b"work_server: receive from channel anonymous (the sender, pid %d, ended "
                    b"without closing): Connection reset by peer\n" % child)
        check_equal(err, expected, "stderr")


def the_server_killed_ends_the_child(binary):
    server, port = start(binary)
    with server:
        child = children(server.pid)[0]
        server.process.kill()
        server.process.wait()
        support.wait_until(lambda: not running(child), f"the child {child} to end", timeout=5)


def busy_port(binary):
    support.check_busy_port(binary, socket.SOCK_STREAM)


def usage(binary):
    support.check_usage(binary, b"usage: work_server PORT\n",
                        [[], ["1", "2"], [""], ["http"], ["0"], ["65536"]])


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (
                answers_each_client,
                more_lines_than_the_channel_holds,
                stop_ends_the_child,
                a_dead_child_is_reported,
                the_server_killed_ends_the_child,
                busy_port,
                usage,
            )
        }
    )
