/* The practical limit for a TCP echo server over io_uring, written in C against liburing 2.3 to the
 * best practice the kernel offers: one multishot accept; one multishot recv per connection taking
 * buffers from a provided-buffer ring; the received buffer itself is sent back and returned to the
 * ring once its send completes (no copy); SINGLE_ISSUER | DEFER_TASKRUN; a registered ring
 * descriptor; one io_uring_submit_and_wait per loop turn and every ready CQE reaped in a batch.
 *
 * Built a second time with RAW_DIRECT=1 (raw_uring_echo_direct): connections are then direct
 * descriptors (IORING_FILE_INDEX_ALLOC into a sparse registered table, IOSQE_FIXED_FILE on every
 * recv and send, shutdown and close through the ring), so the two builds measure what direct
 * descriptors save. Accepted sockets inherit TCP_NODELAY from the listener, since a direct
 * descriptor has no number for setsockopt.
 *
 * Built a third time with RAW_BOUNDED=1 (raw_uring_echo_bounded): the same server under ringio's
 * bound, so that what the bound costs is measured apart from what ringio costs. Each connection
 * holds at most BOUND buffers (received and not yet sent back), through a single-shot recv per
 * chunk armed only below that budget (a multishot recv cannot be bounded: the kernel takes a buffer
 * per chunk before user space sees any); the recvs of a turn are armed at its end, behind its
 * sends, as ringio arms them.
 *
 * Built a fourth time with RAW_BOUNDED=2 (raw_uring_echo_polled): the same bound, but each
 * connection keeps a multishot poll armed and its recv goes in only once the poll said readable,
 * with MSG_DONTWAIT (an empty socket answers -EAGAIN and the poll waits on), and again at once
 * while the recv said more data is queued (IORING_CQE_F_SOCK_NONEMPTY). A recv that finds no data
 * arms a poll of its own in the kernel and disarms it on completion, every round trip; the
 * multishot poll stays armed. It is written for the throughput grid: a client that stalls and
 * then resets may leave its connection open here (ringio's receive closes it, and its reliability
 * tests check that).
 *
 * Built a fifth time with RAW_BOUNDED=3 (raw_uring_echo_ringed): the same bound, kept by the
 * kernel. Each connection registers a provided-buffer ring of its own, BOUND entries holding its
 * own BOUND buffers, and keeps one multishot recv armed on it: the kernel cannot take more buffers
 * than the ring holds, and a recv that finds the ring empty ends with -ENOBUFS and is armed again
 * when a send gives a buffer back. The ring costs a page and a registration per connection, and
 * buffer group ids are 16 bits: it measures what a multishot recv would save a bounded server, not
 * a design for ten thousand idle connections.
 *
 * RAW_POLL_FIRST=1 with RAW_BOUNDED=1, built by hand (docs/design.md measures it with bench/pair):
 * every recv carries IORING_RECVSEND_POLL_FIRST, so that the kernel arms its poll without first
 * trying a recv that would find the socket empty.
 *
 * Usage: raw_uring_echo PORT [--cpu C] */
#include "uring_peer.h"

#include <poll.h>
#include <stdint.h>

enum {
    op_accept = 1,
    op_recv = 2,
    op_send = 3,
    op_backoff = 4,
    op_poll = 5,
};

/* 4 KiB holds the largest message of the grid in one buffer. 2048 of them are far more than 500
 * connections hold at once; 10,000 idle connections hold none. */
#define BUF_SIZE 4096u
#ifndef BUF_COUNT
#define BUF_COUNT 2048u
#endif
#define BUF_GROUP 0
#define SQ_ENTRIES 2048u
#define CQ_ENTRIES 16384u
#ifndef RAW_DIRECT
#define RAW_DIRECT 0
#endif
#ifndef RAW_BOUNDED
#define RAW_BOUNDED 0
#endif
#if RAW_BOUNDED && RAW_DIRECT
#error "the bounded builds use plain descriptors"
#endif
#define RAW_POLLED (RAW_BOUNDED == 2)
#define RAW_RINGED (RAW_BOUNDED == 3)
/* The builds that bound a connection with a single-shot recv per chunk. */
#define RAW_SINGLE (RAW_BOUNDED == 1 || RAW_BOUNDED == 2)
#ifndef RAW_POLL_FIRST
#define RAW_POLL_FIRST 0
#endif
/* The bounded build's buffers per connection: ringio's default budget. */
#define BOUND 2
/* Slots of the registered file table in direct mode: more than the 10,000 idle connections. */
#define DIRECT_SLOTS 65536
/* The ringed build: descriptors below this have a buffer group (the same number) and BOUND
 * buffers each. */
#define RINGED_SLOTS 16384
#define RING_BYTES 4096u
#if RAW_RINGED
#undef BUF_COUNT
#define BUF_COUNT (RINGED_SLOTS * BOUND)
#endif

/* Per connection, indexed by descriptor. A connection owns the buffers queued for sending, in
 * arrival order, chained through buf_next; only the head is ever being sent, so bytes leave in
 * the order they came even when a send is short. */
struct conn {
    int32_t send_head; /* buffer id, -1 when nothing is queued */
    int32_t send_tail;
    uint8_t open;
    uint8_t recv_armed; /* a multishot recv is in flight */
    uint8_t send_busy;  /* a send of send_head is in flight */
    uint8_t dead;       /* peer gone or error: drop what arrives, close once nothing is in flight */
    uint8_t starved;    /* the recv ended with -ENOBUFS; re-armed when buffers come back */
    /* The bounded builds' state, a byte each there: buffers received and not yet given back
     * (held), in the list of recvs to arm at the end of the turn (wanted); polled build: the
     * multishot poll is armed (polled), its removal asked for (removing), the poll said readable
     * and no recv found the socket empty since (readable), the poll saw the end or an error, so
     * readable for good (hung_up). The other builds never set them: bits there, so that their
     * state stays 16 bytes, as the reference's would be without the bounded builds. */
#if RAW_BOUNDED
    uint8_t held, wanted, polled, removing, readable, hung_up;
};
#else
    uint8_t held : 2, wanted : 1, polled : 1, removing : 1, readable : 1, hung_up : 1;
};
_Static_assert(sizeof(struct conn) == 16, "the unbounded builds keep a connection in 16 bytes");
#endif

static struct io_uring ring;
static struct io_uring_buf_ring* buf_ring;
static unsigned char* buffers;
static int32_t buf_next[BUF_COUNT];
static uint32_t buf_off[BUF_COUNT];
static uint32_t buf_len[BUF_COUNT];
static unsigned buffers_held;  /* taken by the kernel and not yet given back */
static unsigned buffers_added; /* given back since the ring tail was last published */

static struct conn* conns;
static int max_fds;
static int* starved_fds;
static int starved_count;
static int* wanted_fds; /* bounded build: connections whose recv is armed at the end of the turn */
static int wanted_count;
static int listen_fd;
static struct __kernel_timespec backoff = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};

static uint64_t make_user_data(int op, int fd) {
    return ((uint64_t)op << 32) | (uint32_t)fd;
}

static void arm_accept(void) {
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
#if RAW_DIRECT
    io_uring_prep_multishot_accept_direct(sqe, listen_fd, NULL, NULL, 0);
#else
    io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
#endif
    io_uring_sqe_set_data64(sqe, make_user_data(op_accept, listen_fd));
}

static void arm_recv(int fd) {
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
#if RAW_SINGLE
    io_uring_prep_recv(sqe, fd, NULL, BUF_SIZE, RAW_POLLED ? MSG_DONTWAIT : 0);
#else
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
#endif
    sqe->flags |= IOSQE_BUFFER_SELECT | (RAW_DIRECT ? IOSQE_FIXED_FILE : 0);
    sqe->buf_group = RAW_RINGED ? (unsigned short)fd : BUF_GROUP;
    sqe->ioprio |= RAW_POLL_FIRST ? IORING_RECVSEND_POLL_FIRST : 0;
    io_uring_sqe_set_data64(sqe, make_user_data(op_recv, fd));
    conns[fd].recv_armed = 1;
}

/* Bounded build: whether the connection may have a recv armed now: open, idle, not starved for
 * buffers, below its budget, and (polled) known to be readable. */
static int may_recv(const struct conn* c) {
    return c->open && !c->recv_armed && !c->dead && !c->starved && c->held < BOUND &&
           (!RAW_POLLED || c->readable);
}

/* Asks for the connection's next recv, armed at the end of the turn if it still may be then. */
static void want_recv(int fd) {
    struct conn* c = &conns[fd];
    if (!c->wanted && may_recv(c)) {
        c->wanted = 1;
        wanted_fds[wanted_count++] = fd;
    }
}

static void arm_wanted(void) {
    for (int i = 0; i < wanted_count; ++i) {
        struct conn* c = &conns[wanted_fds[i]];
        c->wanted = 0;
        if (may_recv(c)) {
            arm_recv(wanted_fds[i]);
        }
    }
    wanted_count = 0;
}

static void arm_poll(int fd) {
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    io_uring_sqe_set_data64(sqe, make_user_data(op_poll, fd));
    conns[fd].polled = 1;
}

/* Polled build: ends the connection's poll; its last completion comes without IORING_CQE_F_MORE. */
static void remove_poll(int fd) {
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_poll_remove(sqe, make_user_data(op_poll, fd));
    io_uring_sqe_set_data64(sqe, 0);
}

#if RAW_RINGED
static unsigned char* conn_rings; /* RING_BYTES per descriptor, touched once it connects */

static struct io_uring_buf_ring* conn_ring(int fd) {
    return (struct io_uring_buf_ring*)(conn_rings + (size_t)fd * RING_BYTES);
}

/* Buffer `bid` (fd * BOUND + its index in the connection's ring) goes back to its ring at once;
 * a recv that found the ring empty is armed again. */
static void recycle(int bid) {
    int fd = bid / BOUND;
    struct io_uring_buf_ring* br = conn_ring(fd);
    io_uring_buf_ring_add(br, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE,
                          (unsigned short)(bid % BOUND), io_uring_buf_ring_mask(BOUND), 0);
    io_uring_buf_ring_advance(br, 1);
    struct conn* c = &conns[fd];
    if (c->starved && c->open && !c->dead && !c->recv_armed) {
        c->starved = 0;
        arm_recv(fd);
    }
}

/* Registers the connection's ring, holding its BOUND buffers; false if the kernel refuses. */
static int open_conn_ring(int fd) {
    struct io_uring_buf_ring* br = conn_ring(fd);
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = BOUND;
    reg.bgid = (unsigned short)fd;
    if (io_uring_register_buf_ring(&ring, &reg, 0) < 0) {
        return 0;
    }
    for (int i = 0; i < BOUND; ++i) {
        io_uring_buf_ring_add(br, buffers + ((size_t)fd * BOUND + (size_t)i) * BUF_SIZE, BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(BOUND), i);
    }
    io_uring_buf_ring_advance(br, BOUND);
    return 1;
}
#else
static int open_conn_ring(int fd) {
    (void)fd;
    return 1;
}

static void recycle(int bid) {
    io_uring_buf_ring_add(buf_ring, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), (int)buffers_added);
    ++buffers_added;
    --buffers_held;
}
#endif

/* Publishes every buffer given back since the last call with one store to the ring tail. */
static void publish_buffers(void) {
    if (buffers_added != 0) {
        io_uring_buf_ring_advance(buf_ring, (int)buffers_added);
        buffers_added = 0;
    }
}

static void send_head(int fd) {
    struct conn* c = &conns[fd];
    int bid = c->send_head;
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_send(sqe, fd, buffers + (size_t)bid * BUF_SIZE + buf_off[bid], buf_len[bid],
                       MSG_NOSIGNAL);
    sqe->flags |= RAW_DIRECT ? IOSQE_FIXED_FILE : 0;
    io_uring_sqe_set_data64(sqe, make_user_data(op_send, fd));
    c->send_busy = 1;
}

/* A direct descriptor has no number for the plain calls: shut down and close through the ring. The
 * completions carry user_data 0, which the loop ignores. */
static void conn_shutdown(int fd) {
#if RAW_DIRECT
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_shutdown(sqe, fd, SHUT_RDWR);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, 0);
#else
    shutdown(fd, SHUT_RDWR);
#endif
}

static void conn_close(int fd) {
#if RAW_DIRECT
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_close_direct(sqe, (unsigned)fd);
    io_uring_sqe_set_data64(sqe, 0);
#else
    close(fd);
#endif
}

static void drop_queue(struct conn* c) {
    while (c->send_head >= 0) {
        int bid = c->send_head;
        c->send_head = buf_next[bid];
        recycle(bid);
        c->held -= RAW_SINGLE ? 1 : 0;
    }
    c->send_tail = -1;
}

/* Closes a connection only when the kernel holds no operation on its descriptor any more, so a
 * later accept that reuses the number cannot receive a stale completion. */
static void maybe_close(int fd) {
    struct conn* c = &conns[fd];
    if (RAW_POLLED && c->dead && c->open && c->polled && !c->removing) {
        c->removing = 1;
        remove_poll(fd);
    }
    if (c->dead && c->open && !c->recv_armed && !c->send_busy && !c->polled) {
        drop_queue(c);
        c->open = 0;
        c->starved = 0;
#if RAW_RINGED
        io_uring_unregister_buf_ring(&ring, fd);
#endif
        conn_close(fd);
    }
}

static void on_accept(const struct io_uring_cqe* cqe) {
    int res = cqe->res;
    int resource_error = 0;
    if (res >= 0) {
        if (res >= max_fds || !open_conn_ring(res)) {
            conn_close(res);
        } else {
            struct conn* c = &conns[res];
            memset(c, 0, sizeof *c);
            c->send_head = c->send_tail = -1;
            c->open = 1;
            if (!RAW_DIRECT) {
                peer_nodelay(res);
            }
            if (RAW_POLLED) {
                c->readable = 1; /* data may have come with the connection: look once */
                arm_poll(res);
                want_recv(res);
            } else {
                arm_recv(res);
            }
        }
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
        resource_error = 1;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        if (resource_error) {
            /* Out of descriptors or memory: wait on a ring timeout instead of spinning. */
            struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
            io_uring_prep_timeout(sqe, &backoff, 0, 0);
            io_uring_sqe_set_data64(sqe, make_user_data(op_backoff, listen_fd));
        } else {
            arm_accept();
        }
    }
}

static void queue_send(int fd, int bid, int len) {
    struct conn* c = &conns[fd];
    buf_off[bid] = 0;
    buf_len[bid] = (uint32_t)len;
    buf_next[bid] = -1;
    if (c->send_tail >= 0) {
        buf_next[c->send_tail] = bid;
    } else {
        c->send_head = bid;
    }
    c->send_tail = bid;
    if (!c->send_busy) {
        send_head(fd);
    }
}

/* The id of the buffer a recv completion names: in the ringed build, its index in the
 * connection's ring made global (fd * BOUND + index). */
static int received_buffer(int fd, unsigned flags) {
    int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
    return RAW_RINGED ? fd * BOUND + bid : bid;
}

static void on_recv(const struct io_uring_cqe* cqe, int fd) {
    struct conn* c = &conns[fd];
    int res = cqe->res;
    unsigned flags = cqe->flags;
    if (__builtin_expect(res > 0 && (flags & IORING_CQE_F_MORE) && !c->dead, 1)) {
        /* The common case: data into a buffer, the recv still armed. */
        ++buffers_held;
        queue_send(fd, received_buffer(fd, flags), res);
        return;
    }
    int more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
        c->recv_armed = 0;
    }
    if (flags & IORING_CQE_F_BUFFER) {
        int bid = received_buffer(fd, flags);
        ++buffers_held;
        if (res <= 0 || c->dead) {
            recycle(bid);
        } else {
            c->held += RAW_SINGLE ? 1 : 0;
            queue_send(fd, bid, res);
        }
    }
    if (RAW_POLLED && res == -EAGAIN) {
        c->readable = 0; /* the poll tells when data comes */
        maybe_close(fd);
        return;
    }
    if (RAW_POLLED && res > 0 && !(flags & IORING_CQE_F_SOCK_NONEMPTY) && !c->hung_up) {
        c->readable = 0;
    }
    if (res == -ENOBUFS) {
        /* The ring ran dry; the bytes are still in the socket. Re-arm once buffers return. */
        if (!c->dead && !more) {
            c->starved = 1;
            if (!RAW_RINGED) {
                starved_fds[starved_count++] = fd;
            } else if (c->send_head < 0) {
                /* Its sends gave every buffer back before this completion was reaped. */
                c->starved = 0;
                arm_recv(fd);
            } /* else the send of its queue's head gives a buffer back and arms it again */
        }
    } else if (res <= 0) {
        /* 0 is end of stream; anything else negative ends this connection. */
        c->dead = 1;
        if (more) {
            conn_shutdown(fd);
        }
    } else if (!more && !c->dead) {
        /* The kernel may end a multishot recv that delivered data (CQ overflow): re-arm it. A
         * single-shot one is armed again at the end of the turn, if below its budget then. */
        if (RAW_SINGLE) {
            want_recv(fd);
        } else {
            arm_recv(fd);
        }
    }
    maybe_close(fd);
}

static void on_poll(const struct io_uring_cqe* cqe, int fd) {
    struct conn* c = &conns[fd];
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->polled = 0;
        if (c->open && !c->dead) {
            arm_poll(fd); /* the kernel may end a multishot poll (CQ overflow): arm it again */
        }
    }
    if (cqe->res > 0 && c->open && !c->dead) {
        c->readable = 1;
        /* The poll tells of an end or an error once; a recv that drains the data before it
         * must not take the socket for empty. */
        c->hung_up |= (cqe->res & (POLLHUP | POLLERR | POLLRDHUP)) != 0;
        want_recv(fd);
    }
    maybe_close(fd);
}

static void on_send(const struct io_uring_cqe* cqe, int fd) {
    struct conn* c = &conns[fd];
    int bid = c->send_head;
    int res = cqe->res;
    c->send_busy = 0;
    if (__builtin_expect(res >= 0 && (uint32_t)res == buf_len[bid] && !c->dead, 1)) {
        /* The common case: the whole buffer went out. */
        c->send_head = buf_next[bid];
        recycle(bid);
        if (c->send_head >= 0) {
            send_head(fd);
        } else {
            c->send_tail = -1;
        }
        if (RAW_SINGLE) {
            --c->held;
            want_recv(fd);
        }
        return;
    }
    if (res < 0) {
        c->dead = 1;
        drop_queue(c);
        if (c->recv_armed) {
            /* Ends the multishot recv, whose final completion then closes the descriptor. */
            conn_shutdown(fd);
        }
    } else {
        buf_off[bid] += (uint32_t)res;
        buf_len[bid] -= (uint32_t)res;
        if (buf_len[bid] == 0) {
            c->send_head = buf_next[bid];
            if (c->send_head < 0) {
                c->send_tail = -1;
            }
            recycle(bid);
            if (RAW_SINGLE) {
                --c->held;
                want_recv(fd);
            }
        }
        /* A short send leaves the rest at the head of the queue, to go before anything newer. */
        if (c->send_head >= 0 && !c->dead) {
            send_head(fd);
        }
    }
    maybe_close(fd);
}

static void rearm_starved(void) {
    while (starved_count > 0 && buffers_held < BUF_COUNT) {
        int fd = starved_fds[--starved_count];
        struct conn* c = &conns[fd];
        if (c->open && c->starved && !c->dead) {
            c->starved = 0;
            arm_recv(fd);
        }
    }
}

static void setup_ring(void) {
    uring_peer_ring(&ring, SQ_ENTRIES, CQ_ENTRIES, "raw_uring_echo");
#if RAW_DIRECT
    int ret = io_uring_register_files_sparse(&ring, (unsigned)max_fds);
    if (ret < 0) {
        peer_die("io_uring_register_files_sparse", -ret);
    }
#endif
#if RAW_RINGED
    buffers = uring_peer_buffers(BUF_COUNT, BUF_SIZE);
    conn_rings = uring_peer_buffers(RINGED_SLOTS, RING_BYTES);
#else
    buf_ring = uring_peer_buf_ring(&ring, BUF_COUNT, BUF_GROUP);
    buffers = uring_peer_buffers(BUF_COUNT, BUF_SIZE);
    buffers_held = BUF_COUNT;
    for (unsigned bid = 0; bid < BUF_COUNT; ++bid) {
        recycle((int)bid);
    }
    publish_buffers();
#endif
}

int main(int argc, char** argv) {
    struct peer_args args = peer_parse(argc, argv, "raw_uring_echo");
    peer_setup(&args);
    max_fds = peer_max_fds();
    if (RAW_RINGED && max_fds > RINGED_SLOTS) {
        max_fds = RINGED_SLOTS;
    }
    if (RAW_DIRECT && max_fds > DIRECT_SLOTS) {
        max_fds = DIRECT_SLOTS;
    }
    conns = calloc((size_t)max_fds, sizeof *conns);
    starved_fds = calloc((size_t)max_fds, sizeof *starved_fds);
    wanted_fds = calloc((size_t)max_fds, sizeof *wanted_fds);
    if (conns == NULL || starved_fds == NULL || wanted_fds == NULL) {
        peer_die("calloc", ENOMEM);
    }
    listen_fd = peer_bind(SOCK_STREAM, args.port, 0);
    if (RAW_DIRECT) {
        peer_nodelay(listen_fd); /* inherited by every accepted socket */
    }
    setup_ring();
    arm_accept();

    while (!peer_stop) {
        publish_buffers();
        rearm_starved();
        if (RAW_SINGLE) {
            arm_wanted();
        }
        uring_peer_submit_and_wait(&ring);
        unsigned head;
        unsigned seen = 0;
        struct io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            uint64_t data = io_uring_cqe_get_data64(cqe);
            int op = (int)(data >> 32);
            int fd = (int)(uint32_t)data;
            switch (op) {
            case op_accept:
                on_accept(cqe);
                break;
            case op_recv:
                on_recv(cqe, fd);
                break;
            case op_send:
                on_send(cqe, fd);
                break;
            case op_poll:
                on_poll(cqe, fd);
                break;
            case op_backoff:
                arm_accept();
                break;
            default:
                break;
            }
            ++seen;
        }
        io_uring_cq_advance(&ring, seen);
    }

    /* Tearing the ring down cancels every request still in flight. */
    io_uring_queue_exit(&ring);
    for (int fd = 0; fd < max_fds; ++fd) {
        if (!RAW_DIRECT && conns[fd].open) {
            close(fd);
        }
    }
    close(listen_fd);
    return 0;
}
