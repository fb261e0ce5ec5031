"""udp_echo driven by plain Python sockets: every datagram must come back whole."""

import errno
import random
import socket

import support
from support import Failure, check, check_equal


def start(binary, port):
    return support.server([binary, port], port, "udp")


def exchange(family, host, port, payload):
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        for _ in range(20):  # a datagram may be lost: the loopback drops when its queue is full
            sock.sendto(payload, (host, port))
            try:
                answer, sender = sock.recvfrom(70000)
            except socket.timeout:
                continue
            check_equal(sender[1], port, "the port the answer came from")
            return answer
    raise Failure(f"no answer from udp_echo over {host}")


def every_datagram_back(binary):
    # 0 bytes to 65507 (the IPv4 maximum), over IPv4 and IPv6, each compared byte for byte;
    # SIGTERM, then status 0.
    port = support.free_port(socket.SOCK_DGRAM)
    with start(binary, port) as server:
        rng = random.Random(7)
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            for size in (0, 1, 1500, 9000, 65507, *(rng.randint(1, 65507) for _ in range(20))):
                payload = rng.randbytes(size)
                check(exchange(family, host, port, payload) == payload,
                      f"a {size}-byte datagram over {host} came back different")
        server.stop()
        check_equal(server.errors(), b"", "stderr")


def the_port_is_not_shared(binary):
    # A socket of another program that sets SO_REUSEPORT cannot bind the port the server holds.
    port = support.free_port(socket.SOCK_DGRAM)
    with start(binary, port) as server:
        for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
            with socket.socket(family, socket.SOCK_DGRAM) as foreign:
                foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    foreign.bind((address, port))
                except OSError as error:
                    check_equal(error.errno, errno.EADDRINUSE, f"binding {address} port {port}")
                else:
                    raise Failure(f"a SO_REUSEPORT socket bound {address} port {port} beside the server")
        server.stop()


def busy_port(binary):
    support.check_busy_port(binary, socket.SOCK_DGRAM)


def usage(binary):
    support.check_usage(
        binary,
        b"usage: udp_echo PORT\n",
        [[], [""], ["0"], ["http"], ["65536"], ["-1"], ["+80"], ["80x"], ["1", "2"], ["1", "--threads"]],
    )


if __name__ == "__main__":
    support.main(
        {case.__name__: case for case in (every_datagram_back, the_port_is_not_shared, busy_port, usage)}
    )
