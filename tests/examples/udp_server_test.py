"""udp_server driven by clients written with Python's socket module, over IPv4 and IPv6."""

import os
import signal
import socket
import time

import support
from support import Failure, check, check_equal

BUFFER_SIZE = 1024  # udp_server.cpp's buffer
REPLY = b"thank you\n"


def client(family, address):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.bind((address, 0))
    return s


def exchange(s, address, port, message, server=None):
    """Sends one datagram; checks the reply, byte for byte, and who sent it."""
    s.sendto(message, (address, port))
    try:
        reply, sender = s.recvfrom(65536)
    except socket.timeout:
        raise Failure(f"no reply to {message[:40]!r} over {address}\n{server.describe() if server else ''}") from None
    check_equal(reply, REPLY, f"reply to {message[:40]!r} over {address}")
    check_equal(sender[1], port, "the port the reply came from")


def printed(s, message):
    """What the server prints for `message` from client socket `s`: the sender by address, never
    by a name looked up."""
    address, client_port = s.getsockname()[:2]
    header = f"message from {address} port {client_port}:\n".encode()
    return header + message + (b"" if message.endswith(b"\n") else b"\n")


def start(binary, port, wrap=lambda argv: argv, **options):
    return support.server(wrap([binary, port]), port, "udp", **options)


def ipv4_and_ipv6_clients(binary):
    port = support.free_port(socket.SOCK_DGRAM)
    expected = b""
    with start(binary, port) as server:
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with client(family, address) as s:
                for message in (b"hello over " + address.encode(), b"a line that ends\n", b""):
                    exchange(s, address, port, message)
                    expected += printed(s, message)
                    # Each message is printed before its reply is sent.
                    server.wait_output(expected, "output so far")
        server.stop(signal.SIGINT)
        check_equal(server.errors(), b"", "stderr")


def binary_message_printed_byte_for_byte(binary):
    port = support.free_port(socket.SOCK_DGRAM)
    message = bytes(range(256)) * 2 + b"\x00end"
    with start(binary, port) as server:
        with client(socket.AF_INET6, "::1") as s:
            exchange(s, "::1", port, message)
            expected = printed(s, message)
        server.stop()
        check_equal(server.output(), expected, "stdout")
        check_equal(server.errors(), b"", "stderr")


def datagrams_that_fill_or_exceed_the_buffer(binary):
    port = support.free_port(socket.SOCK_DGRAM)
    exact = b"".join(b"%d" % (i % 10) for i in range(BUFFER_SIZE))
    one_more = b"L" * (BUFFER_SIZE + 1)
    largest = b"X" * 65507  # the largest UDP payload over IPv4
    with start(binary, port) as server, client(socket.AF_INET, "127.0.0.1") as s:
        exchange(s, "127.0.0.1", port, exact)
        server.wait_output(printed(s, exact), "a datagram exactly the buffer's size")
        check_equal(server.errors(), b"", "stderr after a datagram that fits")

        expected = printed(s, exact)
        note = (
            f"udp_server: the message from 127.0.0.1 port {s.getsockname()[1]} was cut at "
            f"{BUFFER_SIZE} bytes\n"
        ).encode()
        for count, message in enumerate((one_more, largest), start=1):
            exchange(s, "127.0.0.1", port, message)
            expected += printed(s, message[:BUFFER_SIZE])
            server.wait_output(expected, f"{len(message)} bytes: the first {BUFFER_SIZE} kept")
            server.wait_for_output(lambda _: server.errors() == note * count, "the truncation note")

        exchange(s, "127.0.0.1", port, b"still serving")
        expected += printed(s, b"still serving")
        server.stop()
        check_equal(server.output(), expected, "stdout")


def a_failing_resolver_stops_nothing(binary):
    # The server's resolver fails at once for any address it would look up; its peers are named
    # by address, so it never asks: 127.0.0.2 and ::1 (not in /etc/hosts) are answered at once,
    # and the server keeps serving.
    port = support.free_port(socket.SOCK_DGRAM)
    with support.failing_resolver() as wrap, start(binary, port, wrap) as server:
        expected = b""
        for family, address in ((socket.AF_INET, "127.0.0.2"), (socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")):
            with client(family, address) as s:
                started = time.monotonic()
                exchange(s, address, port, b"from " + address.encode(), server)
                elapsed = time.monotonic() - started
                check(elapsed < 2, f"the reply to {address} took {elapsed:.1f} s")
                expected += printed(s, b"from " + address.encode())
                server.wait_output(expected)
        server.stop()
        check_equal(server.errors(), b"", "stderr")


def fill_the_output(s, port, server, size):
    """Sends datagrams of `size` bytes until one is not answered: each is printed (and noted
    when truncated) before it is answered, so the server is then waiting for an output to take
    more."""
    s.settimeout(0.5)
    for count in range(10000):
        s.sendto(b"%d " % count + b"x" * size, ("127.0.0.1", port))
        try:
            s.recvfrom(65536)
        except socket.timeout:
            return
    raise Failure(f"every datagram was answered: the output never blocked\n{server.describe()}")


def check_stop_while_blocked(binary, stream, size):
    # `stream` ("stdout" or "stderr") is a pipe nobody reads, and datagrams of `size` bytes come
    # until the server waits for that pipe: SIGTERM still stops it at once.
    port = support.free_port(socket.SOCK_DGRAM)
    reader, writer = os.pipe()
    try:
        with start(binary, port, **{stream: writer}) as server, client(socket.AF_INET, "127.0.0.1") as s:
            os.close(writer)
            writer = None
            fill_the_output(s, port, server, size)
            support.wait_until_pipe_stalls(reader, f"udp_server's {stream}")
            server.stop(within=5)
            if stream == "stdout":
                check_equal(server.errors(), b"", "stderr")
    finally:
        os.close(reader)
        if writer is not None:
            os.close(writer)


def stop_while_the_output_is_blocked(binary):
    check_stop_while_blocked(binary, "stdout", 1000)


def stop_while_the_error_output_is_blocked(binary):
    # Each datagram longer than the buffer adds a line to stderr.
    check_stop_while_blocked(binary, "stderr", 2 * BUFFER_SIZE)


def output_reader_gone(binary):
    # Standard output is a pipe whose reader has gone: one line and status 1, not SIGPIPE.
    port = support.free_port(socket.SOCK_DGRAM)
    reader, writer = os.pipe()
    with start(binary, port, stdout=writer) as server, client(socket.AF_INET, "127.0.0.1") as s:
        os.close(writer)
        os.close(reader)
        s.sendto(b"anyone reading?", ("127.0.0.1", port))
        status = server.finish()
        support.check_one_error_line(status, b"", server.errors(), "a datagram to print nowhere",
                                     ["udp_server: write_all to standard output", "Broken pipe"])


def closed_standard_stream(binary):
    # Started with standard output closed: one line and status 1 at once, rather than printing
    # into whatever descriptor took its number.
    port = support.free_port(socket.SOCK_DGRAM)
    status, out, err = support.run([binary, port], timeout=5, closed=[1])
    support.check_one_error_line(status, out, err, "a closed output",
                                 ["udp_server: standard output", "Bad file descriptor"])


def busy_port(binary):
    support.check_busy_port(binary, socket.SOCK_DGRAM)


def usage(binary):
    support.check_usage(
        binary,
        b"usage: udp_server PORT\n",
        [[], ["1", "2"], [""], ["abc"], ["0"], ["65536"], ["-1"], ["+80"], ["80x"], ["domain"]],
    )


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (
                ipv4_and_ipv6_clients,
                binary_message_printed_byte_for_byte,
                datagrams_that_fill_or_exceed_the_buffer,
                a_failing_resolver_stops_nothing,
                stop_while_the_output_is_blocked,
                stop_while_the_error_output_is_blocked,
                output_reader_gone,
                closed_standard_stream,
                busy_port,
                usage,
            )
        }
    )
