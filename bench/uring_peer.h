/* Set-up shared by the raw liburing peers (TCP and UDP): the ring, with the flags best practice
 * asks for where the kernel has them, and a provided-buffer ring with its buffers. */
#ifndef RINGIO_BENCH_URING_PEER_H
#define RINGIO_BENCH_URING_PEER_H

#include "peer.h"

#include <liburing.h>
#include <stdint.h>
#include <sys/mman.h>

/* A ring of sq_entries with a CQ of cq_entries (much larger: each multishot operation can
 * complete many times per loop turn); SINGLE_ISSUER | DEFER_TASKRUN, else COOP_TASKRUN, else
 * neither; the ring descriptor registered when the kernel allows it. */
static inline void uring_peer_ring(struct io_uring* ring, unsigned sq_entries, unsigned cq_entries,
                                   const char* name) {
    const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; ++i) {
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        params.flags = flag_sets[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        params.cq_entries = cq_entries;
        ret = io_uring_queue_init_params(sq_entries, ring, &params);
        if (ret != -EINVAL) {
            break;
        }
        fprintf(stderr, "%s: ring flags 0x%x refused, trying fewer\n", name, params.flags);
    }
    if (ret < 0) {
        peer_die("io_uring_queue_init_params", -ret);
    }
    ret = io_uring_register_ring_fd(ring);
    if (ret < 0) {
        fprintf(stderr, "%s: io_uring_register_ring_fd: %s (continuing)\n", name, strerror(-ret));
    }
}

/* An SQE, never assuming the SQ has room: when it is full, submits what is there and takes a
 * fresh entry. */
static inline struct io_uring_sqe* uring_peer_get_sqe(struct io_uring* ring) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    while (sqe == NULL) {
        int ret = io_uring_submit(ring);
        if (ret < 0 && ret != -EBUSY && ret != -EINTR) {
            peer_die("io_uring_submit", -ret);
        }
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/* Submits what is queued and waits for at least one completion. A signal (the stop request)
 * interrupts the wait; the caller's loop then checks peer_stop. */
static inline void uring_peer_submit_and_wait(struct io_uring* ring) {
    int ret = io_uring_submit_and_wait(ring, 1);
    if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -ETIME) {
        peer_die("io_uring_submit_and_wait", -ret);
    }
}

/* A provided-buffer ring of `count` entries (a power of two) registered as `group`. liburing 2.3
 * has no io_uring_setup_buf_ring: the ring is mapped and registered by hand. */
static inline struct io_uring_buf_ring* uring_peer_buf_ring(struct io_uring* ring, unsigned count,
                                                            unsigned short group) {
    void* mem = mmap(NULL, count * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        peer_die("mmap", errno);
    }
    struct io_uring_buf_ring* buf_ring = mem;
    io_uring_buf_ring_init(buf_ring);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)buf_ring;
    reg.ring_entries = count;
    reg.bgid = group;
    int ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret < 0) {
        peer_die("io_uring_register_buf_ring", -ret);
    }
    return buf_ring;
}

/* `count` buffers of `size` bytes, one block; buffer i starts at i * size. */
static inline unsigned char* uring_peer_buffers(unsigned count, unsigned size) {
    void* mem = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        peer_die("mmap", errno);
    }
    return mem;
}

#endif
