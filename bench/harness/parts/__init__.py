"""The parts of the benchmark, in the order they run and are reported. Each module has NAME,
run(ctx) returning its figures for results.json, report(res, ctx) returning what its template
(bench/templates/NAME.md.j2) shows, and, if it judges a target, targets(res, ctx) returning rows
of (target, ringio, peers)."""

from . import (callgrind, channel, close, compile, idle, kernel, mapped, stall, stop, tcp, threads,
               udp)

PARTS = [tcp, kernel, threads, callgrind, idle, close, stop, stall, compile, udp, mapped, channel]
NAMES = [part.NAME for part in PARTS]
# The order of the targets table.
TARGETS = [tcp, callgrind, idle, compile, close, stop, stall, channel]
