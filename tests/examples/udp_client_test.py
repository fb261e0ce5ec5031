"""udp_client against UDP servers written with Python's socket module, over IPv4 and IPv6."""

import os
import socket
import subprocess
import threading
import time

import support
from support import check, check_equal


class EchoServer:
    """Answers each datagram with b"got " + the datagram, ending the answer with a newline
    when the datagram starts with b"n" (the client must not print a second one), and keeps
    what it received."""

    def __init__(self, family, address, answer=True, forger=None):
        """With `forger`, a socket elsewhere: before each answer, it sends the client a datagram
        of its own, which the client must not take for the answer."""
        self.forger = forger
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6 and address == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.socket.bind((address, 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.received = []
        self.answer = answer
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._done.is_set():
            try:
                data, sender = self.socket.recvfrom(65536)
            except socket.timeout:
                continue
            self.received.append(data)
            if self.forger:
                self.forger.sendto(b"forged answer to " + data, sender)
                time.sleep(0.1)
            if self.answer:
                self.socket.sendto(b"got " + data + (b"\n" if data.startswith(b"n") else b""), sender)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self._done.set()
        self._thread.join()
        self.socket.close()
        return False


def answers(lines):
    return b"".join(b"Server says: got " + line + b"\n" for line in lines)


def lines_over_ipv4_and_ipv6(binary):
    text = b"first\nnewline in the answer\n\nlast line without a newline"
    lines = [b"first", b"newline in the answer", b"", b"last line without a newline"]
    for family, bind_address, host in (
        (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
        (socket.AF_INET6, "::1", "::1"),
        # localhost is IPv4, IPv6 or both depending on /etc/hosts: a dual-stack server answers.
        (socket.AF_INET6, "::", "localhost"),
    ):
        with EchoServer(family, bind_address) as server:
            status, out, err = support.run([binary, host, server.port], input=text)
            what = f"udp_client {host}"
            check_equal(status, 0, f"{what}: exit status (stderr {err!r})")
            check_equal(server.received, lines, f"{what}: the datagrams sent")
            check_equal(out, answers(lines), f"{what}: stdout")
            check_equal(err, b"", f"{what}: stderr")


def lines_split_across_reads(binary):
    pieces = [b"par", b"tial line\nsec", b"ond\n", b"\nthi", b"rd"]
    lines = [b"partial line", b"second", b"", b"third"]
    with EchoServer(socket.AF_INET, "127.0.0.1") as server:
        with support.Process([binary, "127.0.0.1", server.port], stdin=subprocess.PIPE) as client:
            for piece in pieces:
                client.process.stdin.write(piece)
                client.process.stdin.flush()
                time.sleep(0.05)
            # Each line is sent when its end arrives; the last, unended, waits for end of input.
            support.wait_until(lambda: server.received == lines[:-1], "the first lines")
            time.sleep(0.1)
            check_equal(server.received, lines[:-1], "the datagrams sent before end of input")
            client.process.stdin.close()
            check_equal(client.finish(), 0, f"exit status\n{client.describe()}")
            check_equal(server.received, lines, "the datagrams sent")
            check_equal(client.output(), answers(lines), "stdout")


def many_lines_in_one_read(binary):
    lines = [b"line %d" % i for i in range(500)]
    with EchoServer(socket.AF_INET6, "::1") as server:
        status, out, err = support.run([binary, "::1", server.port], input=b"\n".join(lines) + b"\n")
        check_equal(status, 0, f"exit status (stderr {err!r})")
        check_equal(server.received, lines, "the datagrams sent")
        check_equal(out, answers(lines), "stdout")


def no_answer_times_out(binary):
    with EchoServer(socket.AF_INET, "127.0.0.1", answer=False) as server:
        start = time.monotonic()
        status, out, err = support.run([binary, "127.0.0.1", server.port], input=b"anyone?\n")
        elapsed = time.monotonic() - start
        support.check_one_error_line(status, out, err, "a silent server", ["no answer", "2 seconds"])
        check(1.5 < elapsed < 10, f"gave up after {elapsed:.1f} s, not about 2")
        check_equal(server.received, [b"anyone?"], "the datagrams sent")


def answers_only_from_the_server(binary):
    # Another socket on the same host, and another port on the server's own address, send the
    # client a datagram before each real answer: only the server's answers are printed.
    lines = [b"first", b"second", b"third"]
    for forger_address in ("127.0.0.1", "127.0.0.2"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
            forger.bind((forger_address, 0))
            with EchoServer(socket.AF_INET, "127.0.0.1", forger=forger) as server:
                status, out, err = support.run([binary, "127.0.0.1", server.port], input=b"\n".join(lines))
                what = f"a forger on {forger_address}"
                check_equal(status, 0, f"{what}: exit status (stderr {err!r})")
                check_equal(out, answers(lines), f"{what}: stdout")
                check_equal(server.received, lines, f"{what}: the datagrams sent")


def nothing_listening_on_the_port(binary):
    # The socket is connected to the server, so the kernel's "port unreachable" ends the wait
    # at once, with one line saying so, rather than the two-second timeout.
    port = support.free_port(socket.SOCK_DGRAM)
    status, out, err = support.run([binary, "127.0.0.1", port], input=b"hello\n")
    support.check_one_error_line(status, out, err, "a closed port", ["udp_client", "Connection refused"])


def output_reader_gone(binary):
    # Standard output is a pipe whose reader has gone: one line and status 1, not SIGPIPE.
    reader, writer = os.pipe()
    os.close(reader)
    with EchoServer(socket.AF_INET, "127.0.0.1") as server:
        with support.Process([binary, "127.0.0.1", server.port], stdin=subprocess.PIPE, stdout=writer) as client:
            os.close(writer)
            client.process.stdin.write(b"hello\n")
            client.process.stdin.close()
            status = client.finish()
            support.check_one_error_line(status, b"", client.errors(), "an answer to print nowhere",
                                         ["udp_client: write_all to standard output", "Broken pipe"])


def closed_standard_stream(binary):
    # Started with standard input or output closed: one line and status 1 at once, rather than
    # reading from or printing into whatever descriptor took its number.
    with EchoServer(socket.AF_INET, "127.0.0.1") as server:
        for fd, name in ((0, "standard input"), (1, "standard output")):
            status, out, err = support.run([binary, "127.0.0.1", server.port], b"hello\n", timeout=5, closed=[fd])
            support.check_one_error_line(status, out, err, f"a closed {name}",
                                         [f"udp_client: {name}", "Bad file descriptor"])
        check_equal(server.received, [], "the datagrams sent")


def unknown_host(binary):
    status, out, err = support.run([binary, "nohost.invalid", "9"], input=b"hello\n")
    support.check_one_error_line(status, out, err, "an unknown host", ['udp_client: resolve "nohost.invalid"'])


def usage(binary):
    support.check_usage(
        binary,
        b"usage: udp_client HOST PORT\n",
        [[], ["localhost"], ["localhost", "9", "x"], ["localhost", "port"], ["localhost", "0"], ["localhost", "99999"]],
    )


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (
                lines_over_ipv4_and_ipv6,
                lines_split_across_reads,
                many_lines_in_one_read,
                no_answer_times_out,
                answers_only_from_the_server,
                nothing_listening_on_the_port,
                output_reader_gone,
                closed_standard_stream,
                unknown_host,
                usage,
            )
        }
    )
