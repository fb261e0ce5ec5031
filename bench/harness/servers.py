"""The servers each part measures. ringio's rows come first: its examples, run as `echo_server
PORT [--threads N] [--simple]`, `udp_echo PORT` and `tcp_server PORT`; every other server is a
peer built from bench/ and started as `BINARY PORT`, single-threaded."""

from pathlib import Path

from .core import BUILD, BenchError, Server

REFERENCE = "raw liburing"
# The reference rebuilt on direct descriptors: what they save, measured rather than assumed. A
# variant of the reference, not a peer of its own: the targets do not count it among the others.
REFERENCE_DIRECT = "raw liburing, direct descriptors"
# The reference held to ringio's bound (two buffers per connection, a single-shot recv per chunk):
# what the bound itself costs. And the same bound with each recv sent once a multishot poll says
# the socket is readable. Variants of the reference too, never counted among the others.
REFERENCE_BOUNDED = "raw liburing, bounded"
REFERENCE_POLLED = "raw liburing, bounded, polled"
# The same bound kept by the kernel (a buffer ring of its own per connection, a multishot recv):
# measured by the kernel part only, since a ring per connection is no design for idle ones.
REFERENCE_RINGED = "raw liburing, bounded, ringed"
VARIANTS = (REFERENCE_DIRECT, REFERENCE_BOUNDED, REFERENCE_POLLED)
RINGIO_PROGRAMS = ("echo_server", "udp_echo", "tcp_server")


def ringio_binaries():
    """ringio's examples as bench/CMakeLists.txt found or built them (`name=path` lines)."""
    listed = BUILD / "ringio_servers.txt"
    found = {}
    if listed.exists():
        for line in listed.read_text().splitlines():
            name, _, path = line.partition("=")
            if path and Path(path).exists():
                found[name] = path
    missing = [name for name in RINGIO_PROGRAMS if name not in found]
    if missing:
        raise BenchError(f"ringio's {', '.join(missing)} not found: built from examples/, or in "
                         f"the directory --ringio-examples names")
    return found


def is_ringio(name):
    """ringio's own rows, which are never counted among the peers it is compared with."""
    return name.startswith("ringio")


def tcp_servers(ringio):
    echo = ringio.get("echo_server", "echo_server")
    return [
        Server("ringio", [echo, "{port}"]),
        # The plain read(buffer)/write_all loop with a buffer per connection, against the
        # default multishot recv into shared buffers: what the fast path is worth.
        Server("ringio (read/write)", [echo, "{port}", "--simple"]),
        Server(REFERENCE, [BUILD / "raw_uring_echo", "{port}"]),
        Server(REFERENCE_DIRECT, [BUILD / "raw_uring_echo_direct", "{port}"]),
        Server(REFERENCE_BOUNDED, [BUILD / "raw_uring_echo_bounded", "{port}"]),
        Server(REFERENCE_POLLED, [BUILD / "raw_uring_echo_polled", "{port}"]),
        Server("epoll (C)", [BUILD / "epoll_echo", "{port}"]),
        Server("Asio epoll", [BUILD / "asio_echo_epoll", "{port}"]),
        Server("Asio io_uring", [BUILD / "asio_echo_uring", "{port}"]),
    ]


def bound_servers(ringio):
    """The kernel part: ringio, the reference, and the reference under each way of bounding."""
    names = ("ringio", REFERENCE, REFERENCE_BOUNDED, REFERENCE_POLLED)
    return [s for s in tcp_servers(ringio) if s.name in names] + [
        Server(REFERENCE_RINGED, [BUILD / "raw_uring_echo_ringed", "{port}"])]


def thread_servers(ringio):
    """echo_server with one and with two threads (one io_context and one duplicate of a shared
    listening socket each), and the single-threaded reference under the same conditions."""
    echo = ringio.get("echo_server", "echo_server")
    return [
        Server("ringio, 1 thread", [echo, "{port}", "--threads", "1"]),
        Server("ringio, 2 threads", [echo, "{port}", "--threads", "2"]),
        Server("raw liburing, 1 thread", [BUILD / "raw_uring_echo", "{port}"]),
    ]


def scale_servers(ringio):
    """The close and stall parts: ringio's two echo paths on one thread, the reference and Asio."""
    echo = ringio.get("echo_server", "echo_server")
    return [
        Server("ringio", [echo, "{port}", "--threads", "1"]),
        Server("ringio (read/write)", [echo, "{port}", "--threads", "1", "--simple"]),
        Server(REFERENCE, [BUILD / "raw_uring_echo", "{port}"]),
        Server("Asio epoll", [BUILD / "asio_echo_epoll", "{port}"]),
    ]


def stop_servers(ringio):
    """The stop part: the examples that hold connections, with whether each echoes."""
    return [
        (Server("echo_server", [ringio.get("echo_server", "echo_server"), "{port}"]), True),
        (Server("tcp_server", [ringio.get("tcp_server", "tcp_server"), "{port}"]), False),
    ]


def udp_servers(ringio):
    return [
        Server("ringio", [ringio.get("udp_echo", "udp_echo"), "{port}"], "udp"),
        Server("raw liburing", [BUILD / "raw_uring_udp_echo", "{port}"], "udp"),
        Server("recvfrom/sendto (C)", [BUILD / "udp_echo", "{port}"], "udp"),
    ]
