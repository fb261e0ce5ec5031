/* Helpers shared by the C peer servers of the benchmark: argument parsing, CPU pinning, the
 * listening socket and the stop flag. Every peer takes the same arguments as ringio's examples,
 * `PORT [--cpu C]`, so the runner starts them all the same way. */
#ifndef RINGIO_BENCH_PEER_H
#define RINGIO_BENCH_PEER_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Set by SIGINT or SIGTERM; each server's loop checks it after an interrupted wait. */
static volatile sig_atomic_t peer_stop;

static inline void peer_on_signal(int sig) {
    (void)sig;
    peer_stop = 1;
}

static inline void peer_die(const char* what, int err) {
    fprintf(stderr, "%s: %s\n", what, strerror(err));
    exit(1);
}

struct peer_args {
    int port;
    int cpu; /* -1: not pinned */
};

static inline struct peer_args peer_parse(int argc, char** argv, const char* usage_name) {
    struct peer_args args = {0, -1};
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [--cpu C]\n", usage_name);
        exit(2);
    }
    args.port = atoi(argv[1]);
    for (int i = 2; i < argc; ++i) {
        if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) {
            args.cpu = atoi(argv[++i]);
        } else {
            fprintf(stderr, "%s: unknown argument %s\n", usage_name, argv[i]);
            exit(2);
        }
    }
    if (args.port <= 0 || args.port > 65535) {
        fprintf(stderr, "%s: bad port %s\n", usage_name, argv[1]);
        exit(2);
    }
    return args;
}

/* Pins the process, installs the stop handlers (without SA_RESTART, so that a blocking wait
 * returns EINTR) and raises the descriptor limit to its hard maximum for the 10,000-connection
 * measurement. */
static inline void peer_setup(const struct peer_args* args) {
    if (args->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(args->cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            peer_die("sched_setaffinity", errno);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = peer_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/* The highest descriptor number the process can hold, for tables indexed by descriptor. */
static inline int peer_max_fds(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
        limit.rlim_cur > (1u << 20)) {
        return 1 << 20;
    }
    return (int)limit.rlim_cur;
}

/* A TCP or UDP socket bound to 127.0.0.1:port; listening when it is a stream socket. Loopback
 * only: the benchmark never takes traffic from anywhere else. */
static inline int peer_bind(int type, int port, int nonblocking) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        peer_die("socket", errno);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        peer_die("bind", errno);
    }
    if (type == SOCK_STREAM && listen(fd, SOMAXCONN) != 0) {
        peer_die("listen", errno);
    }
    return fd;
}

static inline void peer_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

#endif
