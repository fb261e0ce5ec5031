#!/usr/bin/env bash
# memcheck_test.sh LOG_DIR COMMAND...
# Runs an example's test, COMMAND, whose example programs are the scripts that CMake generates
# under memcheck/ (each runs its program under valgrind's memcheck, reporting into
# $RINGIO_MEMCHECK_LOGS), then fails if valgrind reported anything: valgrind runs with -q, so
# a log that is not empty holds an error, a definite or indirect leak, or a system call valgrind
# could not follow.
set -uo pipefail
logs=$1
shift
rm -rf "$logs"
mkdir -p "$logs"
export RINGIO_MEMCHECK_LOGS=$logs
output=$logs/output
"$@" 2>&1 | tee "$output"
status=${PIPESTATUS[0]}

reported=0
ran=0
for log in "$logs"/*.log; do
    [ -e "$log" ] || continue
    ran=$((ran + 1))
    if [ -s "$log" ]; then
        echo "FAILED: valgrind reported, in $log:" >&2
        cat "$log" >&2
        reported=1
    fi
done
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
if [ "$ran" -eq 0 ] && ! grep -q "SKIPPED:" "$output"; then
    echo "FAILED: no program ran under valgrind" >&2
    exit 1
fi
[ "$reported" -eq 0 ] && echo "memcheck: $ran runs under valgrind, nothing reported"
exit "$reported"
