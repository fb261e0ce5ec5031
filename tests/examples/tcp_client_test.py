"""tcp_client sending to TCP listeners written with Python's socket module, over IPv4 and IPv6."""

import os
import socket
import subprocess
import tempfile
import threading
import time

import support
from support import check, check_equal


class Listener:
    """Accepts one connection and keeps everything it receives until end of stream."""

    def __init__(self, family, address):
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6 and address == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.socket.bind(address if family == socket.AF_UNIX else (address, 0))
        self.socket.listen()
        self.socket.settimeout(20)
        self.port = None if family == socket.AF_UNIX else self.socket.getsockname()[1]
        self.received = bytearray()
        self.ended = threading.Event()
        self.error = None
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self):
        try:
            connection, _ = self.socket.accept()
            with connection:
                connection.settimeout(20)
                while chunk := connection.recv(65536):
                    self.received += chunk
            self.ended.set()
        except OSError as error:
            self.error = error

    def result(self):
        self._thread.join(25)
        check(self.error is None, f"listener: {self.error!r}")
        check(self.ended.is_set(), "the listener never read end of stream")
        return bytes(self.received)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.socket.close()
        return False


def a_file_byte_for_byte(binary):
    # Every byte value, then a mebibyte of random bytes: more than any one read or send moves.
    data = bytes(range(256)) * 4 + os.urandom(1 << 20)
    with tempfile.TemporaryFile() as input_file:
        input_file.write(data)
        for family, address, host in (
            (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
            (socket.AF_INET6, "::1", "::1"),
            # localhost is IPv4, IPv6 or both depending on /etc/hosts: a dual-stack listener.
            (socket.AF_INET6, "::", "localhost"),
        ):
            input_file.seek(0)
            with Listener(family, address) as listener:
                result = subprocess.run(
                    [binary, host, str(listener.port)], stdin=input_file, capture_output=True, timeout=20
                )
                what = f"tcp_client {host}"
                check_equal(result.returncode, 0, f"{what}: exit status (stderr {result.stderr!r})")
                check_equal(result.stdout + result.stderr, b"", f"{what}: output")
                received = listener.result()
                check_equal(len(received), len(data), f"{what}: bytes received")
                check(received == data, f"{what}: the bytes received differ from the file")


def piped_input_is_sent_as_it_arrives(binary):
    with Listener(socket.AF_INET6, "::1") as listener:
        with support.Process([binary, "::1", listener.port], stdin=subprocess.PIPE) as client:
            client.process.stdin.write(b"first part\n")
            client.process.stdin.flush()
            # Sent before the input ends: the client copies as it reads.
            support.wait_until(lambda: listener.received == b"first part\n", "the first part")
            check(not listener.ended.is_set(), "the connection ended before the input did")
            client.process.stdin.write(b"second part, without a newline")
            client.process.stdin.close()
            check_equal(client.finish(), 0, f"exit status\n{client.describe()}")
            check_equal(listener.result(), b"first part\nsecond part, without a newline", "bytes received")


def connection_refused(binary):
    port = support.free_port(socket.SOCK_STREAM)
    status, out, err = support.run([binary, "127.0.0.1", port], input=b"hello\n")
    support.check_one_error_line(status, out, err, "a refused connection",
                                 ["tcp_client: connect \"127.0.0.1\"", "Connection refused"])


def closed_standard_stream(binary):
    # Started with standard input closed: one line and status 1 at once, rather than reading
    # from whatever descriptor took its number.
    with Listener(socket.AF_INET, "127.0.0.1") as listener:
        status, out, err = support.run([binary, "127.0.0.1", listener.port], timeout=5, closed=[0])
        support.check_one_error_line(status, out, err, "a closed input",
                                     ["tcp_client: standard input", "Bad file descriptor"])


def unknown_host(binary):
    status, out, err = support.run([binary, "nohost.invalid", "9"], input=b"hello\n")
    support.check_one_error_line(status, out, err, "an unknown host", ['tcp_client: resolve "nohost.invalid"'])


def unix_socket(binary):
    # unix:PATH and unix:@NAME name the server itself: nothing is looked up.
    data = b"over a unix socket\n" * 1000
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "server.sock")
        name = f"ringio-tcp-client-{os.getpid()}"
        for where, address in ((f"unix:{path}", path), (f"unix:@{name}", "\0" + name)):
            with Listener(socket.AF_UNIX, address) as listener:
                status, out, err = support.run([binary, where], input=data)
                check_equal((status, out, err), (0, b"", b""), f"{where}: status, stdout, stderr")
                check_equal(listener.result(), data, f"{where}: what the listener received")
        status, out, err = support.run([binary, f"unix:{path}"])  # its file left behind
        support.check_one_error_line(status, out, err, "nobody listening",
                                     [f"tcp_client: connect unix:{path}: Connection refused"])


def usage(binary):
    support.check_usage(
        binary,
        b"usage: tcp_client HOST PORT | tcp_client unix:PATH\n",
        [[], ["localhost"], ["localhost", "9", "x"], ["localhost", "port"], ["localhost", "0"], ["localhost", "65536"]],
    )


if __name__ == "__main__":
    support.main(
        {
            case.__name__: case
            for case in (
                a_file_byte_for_byte,
                piped_input_is_sent_as_it_arrives,
                connection_refused,
                closed_standard_stream,
                unknown_host,
                unix_socket,
                usage,
            )
        }
    )
