"""kv_server, the server of docs/getting-started.md, driven by clients written with Python's
socket module."""

import signal
import socket
import threading
import time

import support
from support import LineClient, check, check_equal

USAGE_ERROR = b"ERR usage: SET key value | GET key | DEL key\n"


def start(binary):
    port = support.free_port(socket.SOCK_STREAM)
    return support.server([binary, port], port, "tcp"), port


def commands(binary):
    server, port = start(binary)
    with server, LineClient(port) as client:
        for request, answer in [
            (b"GET greeting\n", b"NOT_FOUND\n"),
            (b"SET greeting hello, world\n", b"OK\n"),
            (b"GET greeting\n", b"VALUE hello, world\n"),
            (b"SET greeting  two  spaces \r\n", b"OK\n"),  # CRLF, as telnet sends
            (b"GET greeting\r\n", b"VALUE  two  spaces \n"),
            (b"DEL greeting\n", b"DELETED\n"),
            (b"DEL greeting\n", b"NOT_FOUND\n"),
            (b"GET greeting\n", b"NOT_FOUND\n"),
            (b"PUT greeting x\n", b"ERR unknown command\n"),
            (b"\n", b"ERR unknown command\n"),
            (b"get greeting\n", b"ERR unknown command\n"),
            (b"SET greeting\n", USAGE_ERROR),
            (b"SET\n", USAGE_ERROR),
            (b"GET\n", USAGE_ERROR),
            (b"DEL\n", USAGE_ERROR),
            (b"SET bytes \x00\x01\xff\n", b"OK\n"),
            (b"GET bytes\n", b"VALUE \x00\x01\xff\n"),
        ]:
            check_equal(client.ask(request), answer, f"the answer to {request!r}")
        # Many requests in one send, answered in order.
        client.socket.sendall(b"".join(b"SET k%d v%d\n" % (i, i) for i in range(100)))
        check_equal([client.line() for _ in range(100)], [b"OK\n"] * 100, "pipelined SETs")
        client.socket.sendall(b"".join(b"GET k%d\n" % i for i in range(100)))
        check_equal([client.line() for _ in range(100)], [b"VALUE v%d\n" % i for i in range(100)],
                    "pipelined GETs")
        server.stop()
        check_equal(server.errors(), b"", "stderr")


def clients_share_the_store(binary):
    server, port = start(binary)
    errors = []

    def writer(i):
        try:
            address = "127.0.0.1" if i % 2 == 0 else "::1"
            with LineClient(port, address) as client:
                for n in range(50):
                    check_equal(client.ask(b"SET c%d.%d %d\n" % (i, n, n)), b"OK\n", "SET")
        except Exception as error:  # reported by the main thread
            errors.append(f"client {i}: {error!r}")

    with server:
        writers = [threading.Thread(target=writer, args=(i,)) for i in range(10)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(30)
        check_equal(errors, [], "client errors")
        with LineClient(port, "::1") as reader:
            for i in range(10):
                check_equal(reader.ask(b"GET c%d.49\n" % i), b"VALUE 49\n", f"client {i}'s last key")
        server.stop()


def limits(binary):
    server, port = start(binary)
    with server:
        # A line of 1024 bytes, its newline included, fits; one byte more is refused with an
        # answer that arrives (the rest of the line is read and dropped, not reset away).
        with LineClient(port) as client:
            fits = b"SET long " + b"x" * (1024 - 10) + b"\n"
            check_equal(len(fits), 1024, "the longest line")
            check_equal(client.ask(fits), b"OK\n", "a line of 1024 bytes")
            client.socket.sendall(b"SET long " + b"y" * 100_000 + b"\n")
            check_equal(client.line(), b"ERR line too long\n", "a line past 1024 bytes")
            client.closed_within(10)
        # 10,000 keys at most; overwriting one and deleting one still work when it is full.
        with LineClient(port) as client:
            client.socket.sendall(b"".join(b"SET key%d %d\n" % (i, i) for i in range(9_999)))
            answers = [client.line() for _ in range(9_999)]
            check_equal(answers.count(b"OK\n"), 9_999, "9,999 more keys (one is there)")
            check_equal(client.ask(b"SET one-too-many x\n"), b"ERR full\n", "the 10,001st key")
            check_equal(client.ask(b"SET key5 five\n"), b"OK\n", "overwriting when full")
            check_equal(client.ask(b"DEL key6\n"), b"DELETED\n", "deleting when full")
            check_equal(client.ask(b"SET one-more x\n"), b"OK\n", "a key in the room made")
            check_equal(client.ask(b"GET long\n"), b"VALUE " + b"x" * (1024 - 10) + b"\n", "the long value")
        server.stop()
        check_equal(server.errors(), b"", "stderr")


def idle_clients_are_closed(binary):
    server, port = start(binary)
    with server:
        with LineClient(port) as idle, LineClient(port) as busy:
            start_time = time.monotonic()
            # The busy client asks every 0.5 s for 3 s: past 2 s in all, never 2 s idle.
            while time.monotonic() - start_time < 3:
                check_equal(busy.ask(b"GET nothing\n"), b"NOT_FOUND\n", "a busy client's answer")
                last_answer = time.monotonic()
                time.sleep(0.5)
            idle.closed_within(1)  # closed at 2 s, a second ago
            busy.closed_within(4)
            waited = time.monotonic() - last_answer
            check(1.5 <= waited <= 2.8, f"the busy client closed {waited:.2f} s after its last answer")
            # A client that sent half a line is idle too.
            with LineClient(port) as half:
                half.socket.sendall(b"GET no")
                waited = half.closed_within(4)
                check(1.5 <= waited <= 2.8, f"a half line closed after {waited:.2f} s")
        with LineClient(port) as client:
            check_equal(client.ask(b"GET nothing\n"), b"NOT_FOUND\n", "a new client after them")
        server.stop()


def a_client_that_reads_nothing(binary):
    # It asks for a value over and over and reads none of the answers: once they fill the
    # buffers, its write waits 2 s and the connection is closed. Others are served all along.
    server, port = start(binary)
    with server:
        with LineClient(port) as setter:
            check_equal(setter.ask(b"SET big " + b"z" * 1000 + b"\n"), b"OK\n", "SET big")
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.settimeout(0.2)
        # More than the server's answers and receive buffer can take in, however large they grow.
        requests = memoryview(b"GET big\n" * 4_000_000)
        sent = 0
        with stalled, LineClient(port) as other:
            start_time = time.monotonic()
            # Sends until the server stops reading (its answers are stuck) or closes.
            while sent < len(requests) and time.monotonic() - start_time < 20:
                try:
                    sent += stalled.send(requests[sent:sent + 65536])
                except socket.timeout:
                    check_equal(other.ask(b"GET big\n")[:10], b"VALUE zzzz", "another client, meanwhile")
                except (BrokenPipeError, ConnectionResetError):
                    break
            check(sent < len(requests), "the server read every request though no answer was read")
            answered = time.monotonic()
            check_equal(other.ask(b"GET big\n")[:10], b"VALUE zzzz", "another client, meanwhile")
            check(time.monotonic() - answered < 1, "another client waited")
            # Closed within 2 s of its write blocking: reading now drains what was sent, then
            # ends (or is reset, its unread requests dropped).
            stalled.settimeout(10)
            try:
                while stalled.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass
            check(time.monotonic() - start_time < 15, "the stalled client was never closed")
        server.stop()


def stop_is_graceful(binary):
    server, port = start(binary)
    with server:
        clients = [LineClient(port) for _ in range(20)]
        for i, client in enumerate(clients):
            check_equal(client.ask(b"SET s%d x\n" % i), b"OK\n", "a SET before the stop")
        clients[0].socket.sendall(b"GET s0")  # half a request, never finished
        started = time.monotonic()
        server.stop(signal.SIGINT, within=5)
        check(time.monotonic() - started < 1.5, "the stop waited for idle clients")
        for client in clients:
            client.closed_within(5)
            client.socket.close()
        check_equal(server.errors(), b"", "stderr")


def busy_port(binary):
    support.check_busy_port(binary, socket.SOCK_STREAM)


def usage(binary):
    support.check_usage(
        binary,
        b"usage: kv_server PORT\n",
        [[], ["1", "2"], [""], ["http"], ["0"], ["65536"], ["-80"]],
    )


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (
                commands,
                clients_share_the_store,
                limits,
                idle_clients_are_closed,
                a_client_that_reads_nothing,
                stop_is_graceful,
                busy_port,
                usage,
            )
        }
    )
