"""What the example tests share: free ports, servers run in the background and always stopped,
clients run with a deadline, and checks that show both sides when they fail.

Each test script is run as `python3 <example>_test.py CASE BINARY [OPTION...]`, where CASE names
one of its functions, called with the binary and the options; support.main runs it. Only the
standard library is used.
"""

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time

# A whole test case must finish within this many seconds (the ctest TIMEOUT is longer, so that
# the case fails with a message and stops its server rather than being killed).
DEADLINE = 45


class Failure(Exception):
    pass


class Skipped(Exception):
    """What the case needs is missing here (a privilege, a kernel feature): ctest reports it as
    skipped, never as passed."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def check_equal(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}:\n  expected {expected!r}\n  actual   {actual!r}")


def _die_with_parent():
    # Runs in the child before exec: the kernel kills it if the test dies first (a ctest
    # timeout), so that no server outlives its test and keeps a port.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(kind):
    """A port free on both IPv4 and IPv6 for `kind` (SOCK_STREAM or SOCK_DGRAM), chosen by the
    kernel for a dual-stack socket that is closed again at once."""
    with socket.socket(socket.AF_INET6, kind) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
        return s.getsockname()[1]


def wait_until(condition, what, timeout=10.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _bound(port, protocol):
    """How many sockets of `protocol` ('tcp' listening, or 'udp') are bound to `port`, read from
    /proc/net: no connection or datagram that the server would print."""
    suffix = f":{port:04X}"
    state = "0A" if protocol == "tcp" else "07"  # TCP_LISTEN, or TCP_CLOSE for unconnected UDP
    count = 0
    for table in (protocol, protocol + "6"):
        try:
            with open(f"/proc/net/{table}") as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if fields[1].endswith(suffix) and fields[3] == state:
                        count += 1
        except FileNotFoundError:
            pass
    return count


class Process:
    """A program running in the background whose standard output and error are collected as
    they come; killed on leaving the `with` block if still running."""

    def __init__(self, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options):
        """`stdout` or `stderr` other than PIPE (a descriptor the test holds) is not collected."""
        self.argv = [str(arg) for arg in argv]
        self.process = subprocess.Popen(
            self.argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=_die_with_parent,
            **options,
        )
        self._out = bytearray()
        self._err = bytearray()
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, into), daemon=True)
            for stream, into in ((self.process.stdout, self._out), (self.process.stderr, self._err))
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream, into):
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                return
            with self._lock:
                into.extend(chunk)

    @property
    def pid(self):
        return self.process.pid

    def output(self):
        with self._lock:
            return bytes(self._out)

    def errors(self):
        with self._lock:
            return bytes(self._err)

    def describe(self):
        def shown(data):  # the start and end of a long output
            return repr(data) if len(data) <= 2000 else f"{data[:1000]!r} ... {data[-1000:]!r}"

        return f"{' '.join(self.argv)}\n  stdout: {shown(self.output())}\n  stderr: {shown(self.errors())}"

    def running(self):
        return self.process.poll() is None

    def wait_for_output(self, condition, what, timeout=10.0):
        """Waits until condition(stdout so far) holds."""
        try:
            wait_until(lambda: condition(self.output()) or not self.running(), what, timeout)
        except Failure as failure:
            raise Failure(f"{failure}\n{self.describe()}") from None
        check(condition(self.output()), f"exited while waiting for {what}\n{self.describe()}")

    def wait_output(self, expected, what="stdout"):
        """Waits until stdout is as long as `expected`, then checks that it is equal."""
        self.wait_for_output(lambda out: len(out) >= len(expected), what)
        check_equal(self.output(), expected, what)

    def wait_bound(self, port, protocol, sockets=1):
        """Waits until the server has bound `port` with `sockets` sockets (echo_server --threads N
        binds one per thread, and is only fully set up once the last is bound); it has blocked
        SIGINT and SIGTERM by then."""
        try:
            wait_until(lambda: _bound(port, protocol) >= sockets or not self.running(),
                       f"port {port}")
        except Failure as failure:
            raise Failure(f"{failure}\n{self.describe()}") from None
        check(self.running(), f"exited instead of binding port {port}\n{self.describe()}")

    def finish(self, timeout=10.0):
        """Waits for the process to exit by itself; returns its status."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"still running after {timeout} s\n{self.describe()}") from None
        for reader in self._readers:
            reader.join(timeout)
        return self.process.returncode

    def stop(self, signal_number=signal.SIGTERM, within=10.0):
        """Sends `signal_number` and checks that the program exits 0 within `within` seconds."""
        self.process.send_signal(signal_number)
        status = self.finish(within)
        check_equal(status, 0, f"exit status after {signal.Signals(signal_number).name}\n{self.describe()}")

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        if self.running():
            self.process.kill()
            self.process.wait()
        return False


def echo_exchange(sock, payload):
    """Sends `payload` on `sock` from another thread (a large payload would otherwise fill both
    directions' buffers and stall) while reading its echo; returns the bytes that came back,
    as many as were sent. Fails if the connection ends first."""
    sender = threading.Thread(target=sock.sendall, args=(payload,))
    sender.start()
    received = bytearray()
    try:
        while len(received) < len(payload):
            chunk = sock.recv(len(payload) - len(received))
            if not chunk:
                raise Failure(f"the echo ended after {len(received)} of {len(payload)} bytes")
            received += chunk
    finally:
        sender.join()
    return bytes(received)


def descriptor_starved_environment():
    """The environment for a server that a test runs out of descriptors on purpose: UBSan's
    vptr check cannot work without a free descriptor (see out_of_descriptors.supp)."""
    suppressions = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out_of_descriptors.supp")
    options = os.environ.get("UBSAN_OPTIONS", "")
    return dict(os.environ, UBSAN_OPTIONS=f"{options}:suppressions={suppressions}".lstrip(":"))


def unread_bytes(pipe_reader):
    """How many bytes wait in a pipe, given its read end."""
    count = bytearray(4)
    fcntl.ioctl(pipe_reader, termios.FIONREAD, count)
    return int.from_bytes(count, sys.byteorder)


def wait_until_pipe_stalls(pipe_reader, what):
    """Waits until a pipe that nobody reads holds bytes and has stopped filling for half a
    second: its writer is blocked."""
    last, since = -1, time.monotonic()
    end = time.monotonic() + 20
    while True:
        now_unread = unread_bytes(pipe_reader)
        if now_unread != last:
            last, since = now_unread, time.monotonic()
        elif now_unread > 0 and time.monotonic() - since > 0.5:
            return
        if time.monotonic() > end:
            raise Failure(f"{what}: the pipe never stalled ({now_unread} bytes in it)")
        time.sleep(0.05)


@contextlib.contextmanager
def failing_resolver():
    """Yields a function that wraps a command line so that it runs in a mount namespace of its
    own (unshare, unprivileged through a user namespace), whose /etc/resolv.conf names a
    nameserver on loopback that nothing answers on: every DNS query fails at once, as with a
    resolver that cannot be reached. The test's own network stays the same."""
    with tempfile.TemporaryDirectory() as directory:
        resolv_conf = os.path.join(directory, "resolv.conf")
        with open(resolv_conf, "w") as conf:
            conf.write("nameserver 127.0.0.254\noptions timeout:1 attempts:1\n")

        def wrap(argv):
            script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
            return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, resolv_conf, *argv]

        # The premise, checked: without it the case would pass whatever the server does.
        probe = "import socket\ntry:\n socket.getnameinfo(('127.0.0.2', 0), 0)\nexcept socket.gaierror as e:\n print(e)"
        try:
            status, out, err = run(wrap([sys.executable, "-c", probe]))
        except FileNotFoundError:
            raise Skipped("unshare is not installed") from None
        if status != 0:
            raise Skipped(f"no user and mount namespaces here: {err.decode().strip()}")
        if b"Temporary failure in name resolution" not in out:
            raise Skipped(f"/etc/resolv.conf does not decide how addresses are named here: {out!r}")
        yield wrap


def server(argv, port, protocol, sockets=1, **options):
    """Starts a server and waits until it listens on `port` with `sockets` sockets."""
    process = Process(argv, **options)
    try:
        process.wait_bound(port, protocol, sockets)
    except BaseException:
        process.__exit__()
        raise
    return process


def run(argv, input=b"", timeout=15.0, closed=()):
    """Runs a program to its end, with the descriptors `closed` (0 for standard input, 1 for
    output) closed; returns (status, stdout, stderr)."""
    argv = [str(arg) for arg in argv]

    def prepare():
        _die_with_parent()
        for fd in closed:
            os.close(fd)

    try:
        result = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, preexec_fn=prepare)
    except subprocess.TimeoutExpired as expired:
        raise Failure(f"{' '.join(argv)}: still running after {timeout} s\n"
                      f"  stdout: {expired.stdout or b''!r}\n  stderr: {expired.stderr or b''!r}") from None
    return result.returncode, result.stdout, result.stderr


def check_usage(binary, usage, argument_lists):
    """Each argument list is a usage error: status 2, the usage line on stderr, nothing else."""
    for arguments in argument_lists:
        status, out, err = run([binary, *arguments])
        what = f"{binary} {arguments!r}"
        check_equal(status, 2, f"{what}: exit status")
        check_equal(err, usage, f"{what}: stderr")
        check_equal(out, b"", f"{what}: stdout")


def check_busy_port(binary, kind, *options):
    """The server started on a port that a dual-stack socket of `kind` already holds fails in one
    line that names the port."""
    with socket.socket(socket.AF_INET6, kind) as taken:
        taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        taken.bind(("::", 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        status, out, err = run([binary, port, *options])
    check_one_error_line(status, out, err, "a busy port", ["Address already in use", str(port)])


def check_one_error_line(status, out, err, what, contains):
    """A failure reported as the issue asks: status 1 and one line on stderr."""
    check_equal(status, 1, f"{what}: exit status (stderr {err!r})")
    check_equal(out, b"", f"{what}: stdout")
    check(err.endswith(b"\n") and err.count(b"\n") == 1, f"{what}: not one line: {err!r}")
    for text in contains:
        check(text.encode() in err, f"{what}: {text!r} not in {err!r}")


def main(cases):
    """Runs the case named by argv[1] with the binary argv[2] and the options after it."""
    if len(sys.argv) < 3 or sys.argv[1] not in cases:
        names = " | ".join(sorted(cases))
        sys.exit(f"usage: {sys.argv[0]} {names} BINARY [OPTION...]")

    def expire(signum, frame):
        raise Failure(f"the test took longer than {DEADLINE} s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(DEADLINE)
    binary = os.path.abspath(sys.argv[2])
    try:
        cases[sys.argv[1]](binary, *sys.argv[3:])
    except Skipped as reason:
        print(f"SKIPPED: {sys.argv[1]}: {reason}")
        return
    except Failure as failure:
        print(f"FAILED: {sys.argv[1]}: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"passed: {sys.argv[1]}")


class LineClient:
    """One connection to a line server, asking one line at a time."""

    def __init__(self, port, address="127.0.0.1"):
        self.socket = socket.create_connection((address, port), timeout=10)
        self.pending = b""

    def line(self):
        while b"\n" not in self.pending:
            chunk = self.socket.recv(65536)
            check(chunk, f"the server closed the connection; unanswered: {self.pending!r}")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line + b"\n"

    def ask(self, request):
        self.socket.sendall(request)
        return self.line()

    def closed_within(self, seconds):
        """Reads until end of stream; fails on a reset or if it takes longer than `seconds`."""
        self.socket.settimeout(seconds)
        start = time.monotonic()
        try:
            while self.socket.recv(65536):
                pass
        except socket.timeout:
            raise Failure(f"still open after {seconds} s") from None
        return time.monotonic() - start

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.socket.close()
        return False
