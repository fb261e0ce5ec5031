"""tcp_server driven by clients written with Python's socket module, over IPv4 and IPv6."""

import os
import resource
import signal
import socket
import struct
import tempfile
import threading
import time

import support
from support import check, check_equal

FAREWELL = b"connection terminated\n"


def start(binary, port, **options):
    return support.server([binary, port], port, "tcp", **options)


def connect(address, port):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.create_connection((address, port), timeout=5)
    check_equal(s.family, family, "client family")
    return s


def printed_lines(output):
    return output.decode("latin-1").splitlines(keepends=True)


def several_clients_at_once(binary):
    port = support.free_port(socket.SOCK_STREAM)
    count = 8
    # Each client sends its lines in pieces cut mid-line, while the others do the same: the
    # server prints each line whole. Odd clients end without a newline.
    lines = {i: [f"client {i} line {n} {'x' * (i * 37)}\n".encode() for n in range(3)] for i in range(count)}
    for i in range(1, count, 2):
        lines[i][-1] = lines[i][-1].rstrip(b"\n")
    all_connected = threading.Barrier(count)
    errors = []

    def talk(i):
        try:
            address = "127.0.0.1" if i % 2 == 0 else "::1"
            with connect(address, port) as s:
                all_connected.wait(10)
                for line in lines[i]:
                    middle = len(line) // 2
                    s.sendall(line[:middle])
                    time.sleep(0.02)
                    s.sendall(line[middle:])
                    time.sleep(0.01)
        except Exception as error:  # reported by the main thread
            errors.append(f"client {i}: {error!r}")

    with start(binary, port) as server:
        clients = [threading.Thread(target=talk, args=(i,)) for i in range(count)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(20)
        check_equal(errors, [], "client errors")
        server.wait_for_output(lambda out: out.count(FAREWELL) == count, f"{count} farewells")
        server.stop()

        printed = printed_lines(server.output())
        expected = [FAREWELL.decode()] * count
        for i in range(count):
            sent = [line.decode() if line.endswith(b"\n") else line.decode() + "\n" for line in lines[i]]
            expected += sent
            mine = [line for line in printed if line.startswith(f"client {i} ")]
            check_equal(mine, sent, f"client {i}'s lines, whole and in order")
        check_equal(sorted(printed), sorted(expected), "every line printed")
        check_equal(server.errors(), b"", "stderr")


def lines_longer_than_the_buffer(binary):
    # A line longer than the buffer (4096 bytes) is printed up to there, marked as cut, and ends
    # its client: one connection holds one buffer, never more. A line of exactly 4096 bytes fits.
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port) as server:
        expected = b""
        for line in (b"y" * 10000 + b"\n", b"z" * 9000, b"w" * 8192):
            with connect("127.0.0.1", port) as s:
                s.sendall(line)
            expected += line[:4096] + b"\n(cut)\n" + FAREWELL
            server.wait_output(expected)
        with connect("127.0.0.1", port) as s:
            s.sendall(b"v" * 4095 + b"\n")
        server.wait_output(expected + b"v" * 4095 + b"\n" + FAREWELL)
        server.stop()
        check_equal(server.errors(), b"", "stderr")


def a_reset_client_does_not_stop_it(binary):
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port) as server:
        with connect("127.0.0.1", port) as s:
            s.sendall(b"before the reset\n")
            server.wait_output(b"before the reset\n")
            # SO_LINGER with a zero timeout makes close send a reset instead of ending cleanly.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.wait_output(b"before the reset\n" + FAREWELL)
        errors = server.errors()
        check(errors == b"" or (errors.count(b"\n") == 1 and b"reset" in errors),
              f"stderr after a reset: {errors!r}")

        with connect("::1", port) as s:
            s.sendall(b"after the reset\n")
        server.wait_output(b"before the reset\n" + FAREWELL + b"after the reset\n" + FAREWELL)
        server.stop()


def stopping_closes_every_connection(binary):
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port) as server:
        clients = [connect("127.0.0.1", port), connect("::1", port)]
        clients[0].sendall(b"a whole line\n")
        server.wait_output(b"a whole line\n")
        # One small send arrives in one read: once its first line is printed, the server holds
        # the half line that follows it.
        clients[1].sendall(b"second client\nhalf a line")
        server.wait_output(b"a whole line\nsecond client\n")
        server.stop(signal.SIGINT)
        check_equal(sorted(printed_lines(server.output())),
                    sorted(["a whole line\n", "second client\n", "half a line\n"] + [FAREWELL.decode()] * 2),
                    "stdout after SIGINT")
        for s in clients:
            s.settimeout(5)
            check_equal(s.recv(100), b"", "what a client reads once the server has stopped")
            s.close()


def out_of_descriptors(binary):
    port = support.free_port(socket.SOCK_STREAM)
    with start(binary, port, env=support.descriptor_starved_environment()) as server:
        # Room for two connections: the limit is one past the highest descriptor plus two.
        highest = max(int(fd) for fd in os.listdir(f"/proc/{server.pid}/fd"))
        _, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (highest + 3, hard))
        clients = []
        for i in range(4):
            clients.append(connect("127.0.0.1", port))
            clients[-1].sendall(b"client %d\n" % i)
        server.wait_for_output(lambda _: b"Too many open files" in server.errors(), "EMFILE from accept")
        server.wait_for_output(lambda out: sorted(printed_lines(out)) == ["client 0\n", "client 1\n"],
                               "the two clients there is room for")
        # Freeing descriptors lets the waiting connections in.
        for s in clients:
            s.close()
        server.wait_for_output(lambda out: out.count(FAREWELL) == 4, "4 farewells")
        check_equal(sorted(printed_lines(server.output())),
                    sorted([f"client {i}\n" for i in range(4)] + [FAREWELL.decode()] * 4),
                    "stdout")
        for line in server.errors().splitlines():
            check_equal(line, b"tcp_server: accept: Too many open files", "each stderr line")
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (hard, hard))
        server.stop()


def stop_while_the_output_is_blocked(binary):
    # Standard output is a pipe nobody reads, and a client keeps sending: the server waits for
    # the pipe, yet SIGTERM stops it at once.
    port = support.free_port(socket.SOCK_STREAM)
    reader, writer = os.pipe()
    try:
        with start(binary, port, stdout=writer) as server:
            os.close(writer)
            writer = None
            s = connect("127.0.0.1", port)
            line = b"l" * 99 + b"\n"

            def flood():
                try:
                    s.settimeout(20)
                    s.sendall(line * 40000)  # 4 MB: more than the pipe and both socket buffers
                except OSError:
                    pass  # the server stopped first

            sender = threading.Thread(target=flood)
            sender.start()
            support.wait_until_pipe_stalls(reader, "tcp_server's output")
            server.stop(within=5)
            s.close()
            sender.join(10)
            check_equal(server.errors(), b"", "stderr")
    finally:
        os.close(reader)
        if writer is not None:
            os.close(writer)


def output_reader_gone(binary):
    # Standard output is a pipe whose reader has gone: one line and status 1, not SIGPIPE.
    port = support.free_port(socket.SOCK_STREAM)
    reader, writer = os.pipe()
    with start(binary, port, stdout=writer) as server:
        os.close(writer)
        os.close(reader)
        with connect("::1", port) as s:
            s.sendall(b"anyone reading?\n")
            status = server.finish()
        support.check_one_error_line(status, b"", server.errors(), "a line to print nowhere",
                                     ["tcp_server: standard output", "Broken pipe"])


def closed_standard_stream(binary):
    # Started with standard output closed: one line and status 1 at once, rather than printing
    # into whatever descriptor took its number.
    port = support.free_port(socket.SOCK_STREAM)
    status, out, err = support.run([binary, port], timeout=5, closed=[1])
    support.check_one_error_line(status, out, err, "a closed output",
                                 ["tcp_server: standard output", "Bad file descriptor"])


def busy_port(binary):
    support.check_busy_port(binary, socket.SOCK_STREAM)


def unix_socket(binary):
    # The same server on a Unix socket: by path (a stale file from a server that died is
    # replaced, as a restarted server expects) and by abstract name.
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "server.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays, with nobody listening behind it
        name = f"ringio-tcp-server-{os.getpid()}"
        for where, address in ((f"unix:{path}", path), (f"unix:@{name}", "\0" + name)):
            with support.Process([binary, where]) as server:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                support.wait_until(lambda: client.connect_ex(address) == 0, f"{where} listening")
                with client:
                    client.sendall(b"over a unix socket\nlast")
                server.wait_for_output(lambda out: FAREWELL in out, "the farewell")
                server.stop()
                check_equal(server.output(), b"over a unix socket\nlast\n" + FAREWELL, f"{where}: stdout")
                check_equal(server.errors(), b"", f"{where}: stderr")


def usage(binary):
    support.check_usage(
        binary,
        b"usage: tcp_server PORT | tcp_server unix:PATH\n",
        [[], ["1", "2"], [""], ["http"], ["0"], ["65536"], ["-80"], ["4e3"], ["unix:"], ["unix"], ["1.2.3.4:5"]],
    )


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (
                several_clients_at_once,
                lines_longer_than_the_buffer,
                a_reset_client_does_not_stop_it,
                stopping_closes_every_connection,
                out_of_descriptors,
                stop_while_the_output_is_blocked,
                output_reader_gone,
                closed_standard_stream,
                busy_port,
                unix_socket,
                usage,
            )
        }
    )
