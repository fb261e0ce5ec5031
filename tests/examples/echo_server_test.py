#!/usr/bin/env python3
"""Drives examples/echo_server with plain Python sockets: every byte must come back.

Usage: echo_server_test.py ECHO_SERVER [server options...]
Starts the server on a free port, runs concurrent IPv4 and IPv6 clients with payloads from
1 byte to 1 MiB, checks every byte, then stops the server with SIGTERM and expects exit 0.
"""
import random
import socket
import sys
import threading

import support


def client(host, port, seed, failures):
    rng = random.Random(seed)
    try:
        with socket.create_connection((host, port), timeout=20) as sock:
            for size in (1, rng.randint(2, 4096), rng.randint(4097, 1 << 20)):
                payload = rng.randbytes(size)
                if support.echo_exchange(sock, payload) != payload:
                    raise AssertionError(f"echo mismatch for {size} bytes")
    except Exception as error:  # reported by the main thread
        failures.append(f"{host} client {seed}: {error!r}")


def main():
    binary, options = sys.argv[1], sys.argv[2:]
    port = support.free_port(socket.SOCK_STREAM)
    # --threads N binds N SO_REUSEPORT listeners; the server is ready once all are bound.
    sockets = int(options[options.index("--threads") + 1]) if "--threads" in options else 1
    with support.server([binary, port, *options], port, "tcp", sockets) as server:
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
            raise SystemExit("\n".join(failures) + f"\n{server.describe()}")
        server.stop()
    print(f"echo_server {' '.join(options)}: 40 clients echoed byte for byte")


if __name__ == "__main__":
    main()
