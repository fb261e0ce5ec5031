/* A plain epoll TCP echo server in C, the way it is usually written: level-triggered, non-blocking
 * sockets, one read per readiness event, the reply written at once. Bytes the socket cannot take
 * are kept and written on EPOLLOUT; meanwhile the connection is not read, so a client that does not
 * read cannot make the server buffer without bound.
 *
 * Usage: epoll_echo PORT [--cpu C] */
#include "peer.h"

#include <stdint.h>
#include <sys/epoll.h>

#define READ_SIZE 4096
#define MAX_EVENTS 1024

/* Bytes accepted but not yet written, per descriptor; NULL for nearly every connection. */
struct pending {
    size_t off;
    size_t len;
    unsigned char data[];
};

static struct pending** pendings;
static int epfd;

static void close_conn(int fd) {
    free(pendings[fd]);
    pendings[fd] = NULL;
    close(fd); /* also removes it from the epoll set */
}

static void watch(int fd, uint32_t events, int op) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, op, fd, &ev) != 0) {
        peer_die("epoll_ctl", errno);
    }
}

static void on_readable(int fd) {
    unsigned char buf[READ_SIZE];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_conn(fd);
        return;
    }
    if (n < 0) {
        return;
    }
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0) {
        if (errno != EAGAIN) {
            close_conn(fd);
            return;
        }
        w = 0;
    }
    if (w < n) {
        struct pending* p = malloc(sizeof *p + (size_t)(n - w));
        if (p == NULL) {
            peer_die("malloc", ENOMEM);
        }
        p->off = 0;
        p->len = (size_t)(n - w);
        memcpy(p->data, buf + w, p->len);
        pendings[fd] = p;
        watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
    }
}

static void on_writable(int fd) {
    struct pending* p = pendings[fd];
    ssize_t w = write(fd, p->data + p->off, p->len - p->off);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            close_conn(fd);
        }
        return;
    }
    p->off += (size_t)w;
    if (p->off == p->len) {
        free(p);
        pendings[fd] = NULL;
        watch(fd, EPOLLIN, EPOLL_CTL_MOD);
    }
}

static void on_listener(int listen_fd, int max_fds) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* EAGAIN: drained. EMFILE and friends: the pending connection stays queued, and the
             * listener stays readable; the next turn tries again. */
            return;
        }
        if (fd >= max_fds) {
            close(fd);
            continue;
        }
        peer_nodelay(fd);
        watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
}

int main(int argc, char** argv) {
    struct peer_args args = peer_parse(argc, argv, "epoll_echo");
    peer_setup(&args);
    int max_fds = peer_max_fds();
    pendings = calloc((size_t)max_fds, sizeof *pendings);
    if (pendings == NULL) {
        peer_die("calloc", ENOMEM);
    }
    int listen_fd = peer_bind(SOCK_STREAM, args.port, 1);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        peer_die("epoll_create1", errno);
    }
    watch(listen_fd, EPOLLIN, EPOLL_CTL_ADD);

    struct epoll_event events[MAX_EVENTS];
    while (!peer_stop) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            peer_die("epoll_wait", errno);
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                on_listener(listen_fd, max_fds);
            } else if (pendings[fd] != NULL) {
                on_writable(fd);
            } else {
                on_readable(fd);
            }
        }
    }
    for (int fd = 0; fd < max_fds; ++fd) {
        free(pendings[fd]);
    }
    close(epfd);
    close(listen_fd);
    return 0;
}
