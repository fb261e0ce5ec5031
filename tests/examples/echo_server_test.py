#!/usr/bin/env python3
"""Drives examples/echo_server with plain Python sockets: every byte must come back.

Usage: echo_server_test.py ECHO_SERVER [server options...]
Starts the server on a free port, runs concurrent IPv4 and IPv6 clients with payloads from
1 byte to 1 MiB, checks every byte, then stops the server with SIGTERM and expects exit 0.
"""
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::", 0))
        return probe.getsockname()[1]


def wait_listening(port, server, deadline=10.0):
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if server.poll() is not None:
            raise SystemExit(f"echo_server exited early with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("echo_server did not start listening")


def client(host, port, seed, failures):
    rng = random.Random(seed)
    try:
        with socket.create_connection((host, port), timeout=20) as sock:
            for size in (1, rng.randint(2, 4096), rng.randint(4097, 1 << 20)):
                payload = rng.randbytes(size)
                # Send from another thread: a large payload would otherwise fill both
                # directions' buffers and stall.
                sender = threading.Thread(target=sock.sendall, args=(payload,))
                sender.start()
                received = bytearray()
                while len(received) < size:
                    chunk = sock.recv(size - len(received))
                    if not chunk:
                        raise AssertionError("connection closed early")
                    received += chunk
                sender.join()
                if bytes(received) != payload:
                    raise AssertionError(f"echo mismatch for {size} bytes")
    except Exception as error:  # reported by the main thread
        failures.append(f"{host} client {seed}: {error!r}")


def main():
    binary, options = sys.argv[1], sys.argv[2:]
    port = free_port()
    server = subprocess.Popen([binary, str(port), *options])
    try:
        wait_listening(port, server)
        failures = []
        clients = [
            threading.Thread(target=client, args=(host, port, seed, failures))
            for seed in range(20)
            for host in ("127.0.0.1", "::1")
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        if failures:
            raise SystemExit("\n".join(failures))
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=10)
        if code != 0:
            raise SystemExit(f"echo_server exited with {code} after SIGTERM")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    print(f"echo_server {' '.join(options)}: 40 clients echoed byte for byte")


if __name__ == "__main__":
    main()
