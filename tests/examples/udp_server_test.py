"""udp_server driven by clients written with Python's socket module, over IPv4 and IPv6."""

import signal
import socket

import support
from support import check, check_equal

BUFFER_SIZE = 1024  # udp_server.cpp's buffer
REPLY = b"thank you\n"


def client(family, address):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.bind((address, 0))
    return s


def exchange(s, address, port, message):
    """Sends one datagram; checks the reply, byte for byte, and who sent it."""
    s.sendto(message, (address, port))
    reply, sender = s.recvfrom(65536)
    check_equal(reply, REPLY, f"reply to {message[:40]!r} over {address}")
    check_equal(sender[1], port, "the port the reply came from")


def printed(s, message):
    """What the server prints for `message` from client socket `s`."""
    address, client_port = s.getsockname()[:2]
    header = f"message from {support.host_name(address)} port {client_port}:\n".encode()
    return header + message + (b"" if message.endswith(b"\n") else b"\n")


def start(binary, port):
    return support.server([binary, port], port, "udp")


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
        host = support.host_name("127.0.0.1")
        note = (
            f"udp_server: the message from {host} port {s.getsockname()[1]} was longer than "
            f"{BUFFER_SIZE} bytes; the rest was discarded\n"
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


def busy_port(binary):
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as taken:
        taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        taken.bind(("::", 0))
        port = taken.getsockname()[1]
        status, out, err = support.run([binary, port])
    support.check_one_error_line(status, out, err, "a busy port", ["Address already in use", str(port)])


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
                busy_port,
                usage,
            )
        }
    )
