#!/usr/bin/env python3
"""Drives examples/udp_echo with plain Python sockets: every datagram must come back whole.

Usage: udp_echo_test.py UDP_ECHO
Sends datagrams of 0 bytes to 65507 bytes (the IPv4 maximum) over IPv4 and IPv6, checks each
answer byte for byte, then stops the server with SIGTERM and expects exit 0.
"""
import random
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::", 0))
        return probe.getsockname()[1]


def exchange(family, host, port, payload):
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        for _ in range(20):  # the server may still be starting
            sock.sendto(payload, (host, port))
            try:
                answer, sender = sock.recvfrom(70000)
            except socket.timeout:
                continue
            if sender[1] != port:
                raise SystemExit(f"answer from port {sender[1]}, expected {port}")
            return answer
    raise SystemExit(f"no answer from udp_echo over {host}")


def main():
    binary = sys.argv[1]
    port = free_port()
    server = subprocess.Popen([binary, str(port)])
    try:
        rng = random.Random(7)
        count = 0
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            for size in (0, 1, 1500, 9000, 65507, *(rng.randint(1, 65507) for _ in range(20))):
                payload = rng.randbytes(size)
                if exchange(family, host, port, payload) != payload:
                    raise SystemExit(f"{size}-byte datagram over {host} came back different")
                count += 1
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=10)
        if code != 0:
            raise SystemExit(f"udp_echo exited with {code} after SIGTERM")
        print(f"udp_echo: {count} datagrams echoed byte for byte")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
