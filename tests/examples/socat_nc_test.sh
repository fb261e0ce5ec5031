#!/usr/bin/env bash
# The servers as everyday tools see them: tcp_server fed by nc (netcat-openbsd) and socat,
# udp_server answering nc -u and socat, over IPv4 and IPv6.
# Every command that waits has a bound (nc -w, socat -t, the polling loops); the servers are
# killed on any failure. Usage: socat_nc_test.sh UDP_SERVER TCP_SERVER [PYTHON3]
set -euo pipefail
udp_server=$1
tcp_server=$2
python3=${3:-python3}

for tool in socat nc "$python3"; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIPPED: $tool is not installed (scripts/test installs it)"
        exit 0
    fi
done

dir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAILED: $*" >&2
    exit 1
}

free_port() { # $1: SOCK_STREAM or SOCK_DGRAM
    "$python3" -c "import sys; sys.path.insert(0, '$(dirname "$0")'); import socket, support
print(support.free_port(socket.$1))"
}

wait_bound() { # $1: port, $2: tcp or udp, $3: pid
    local hex state
    hex=$(printf ':%04X ' "$1")
    state=$([ "$2" = tcp ] && echo 0A || echo 07)
    for _ in $(seq 500); do
        kill -0 "$3" 2>/dev/null || fail "the server exited before binding port $1"
        if awk -v hex="$hex" -v state="$state" \
            'index($2 " ", hex) && $4 == state { found = 1 } END { exit !found }' \
            "/proc/net/$2" "/proc/net/${2}6" 2>/dev/null; then
            return 0
        fi
        sleep 0.01
    done
    fail "port $1 never bound"
}

stop() { # $1: pid; the server must exit 0 on SIGTERM, and soon
    kill -TERM "$1"
    for _ in $(seq 1000); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.01
    done
    kill -0 "$1" 2>/dev/null && fail "still running 10 s after SIGTERM"
    local status=0
    wait "$1" || status=$?
    [ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
}

# tcp_server: one client through nc over IPv4, one through socat over IPv6.
port=$(free_port SOCK_STREAM)
"$tcp_server" "$port" >"$dir/tcp.out" 2>"$dir/tcp.err" &
pid=$!
pids+=("$pid")
wait_bound "$port" tcp "$pid"
printf 'hello from nc\nover IPv4\n' | nc -N -w 5 127.0.0.1 "$port"
printf 'hello from socat\nover IPv6' | socat -t 5 - "TCP6:[::1]:$port"
for _ in $(seq 500); do
    [ "$(grep -c '^connection terminated$' "$dir/tcp.out")" -eq 2 ] && break
    sleep 0.01
done
stop "$pid"
expected=$'hello from nc\nover IPv4\nconnection terminated\nhello from socat\nover IPv6\nconnection terminated'
[ "$(cat "$dir/tcp.out")" = "$expected" ] || fail "tcp_server printed: $(cat "$dir/tcp.out")"
[ ! -s "$dir/tcp.err" ] || fail "tcp_server stderr: $(cat "$dir/tcp.err")"

# udp_server: nc -u over IPv4 and socat over IPv6 each print the thank-you.
port=$(free_port SOCK_DGRAM)
"$udp_server" "$port" >"$dir/udp.out" 2>"$dir/udp.err" &
pid=$!
pids+=("$pid")
wait_bound "$port" udp "$pid"
answer=$(printf 'datagram from nc\n' | nc -u -w 1 127.0.0.1 "$port")
[ "$answer" = "thank you" ] || fail "nc -u got: $answer"
answer=$(printf 'datagram from socat' | socat -t 1 - "UDP6:[::1]:$port")
[ "$answer" = "thank you" ] || fail "socat got: $answer"
stop "$pid"
grep -qx 'datagram from nc' "$dir/udp.out" || fail "udp_server printed: $(cat "$dir/udp.out")"
grep -qx 'datagram from socat' "$dir/udp.out" || fail "udp_server printed: $(cat "$dir/udp.out")"
[ "$(grep -c '^message from .* port [0-9]*:$' "$dir/udp.out")" -eq 2 ] ||
    fail "udp_server printed: $(cat "$dir/udp.out")"
[ ! -s "$dir/udp.err" ] || fail "udp_server stderr: $(cat "$dir/udp.err")"
echo "passed: socat and nc"
