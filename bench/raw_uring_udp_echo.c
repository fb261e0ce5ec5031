/* The practical limit for a UDP echo server over io_uring, written in C against liburing 2.3 to the
 * best practice the kernel offers: one multishot recvmsg taking buffers from a provided-buffer
 * ring (each buffer holds the sender's address and the datagram, behind the kernel's
 * io_uring_recvmsg_out header); each datagram is sent back from its own buffer (no copy), which
 * returns to the ring once its sendmsg completes; SINGLE_ISSUER | DEFER_TASKRUN; a registered ring
 * descriptor; one io_uring_submit_and_wait per loop turn and every ready CQE reaped in a batch.
 * Needs Linux 6.0 (multishot recvmsg).
 *
 * Like the recvfrom/sendto server, it drops a datagram larger than its buffer rather than echo it
 * short.
 *
 * Usage: raw_uring_udp_echo PORT [--cpu C] */
#include "uring_peer.h"

#include <stdint.h>

/* A header, an IPv4 or IPv6 address and the largest datagram of the grid, with room to spare. */
#define BUF_SIZE 4096u
#ifndef BUF_COUNT
#define BUF_COUNT 1024u
#endif
#define BUF_GROUP 0
#define SQ_ENTRIES 1024u
#define CQ_ENTRIES 8192u
/* user_data of the recvmsg; a send's is its buffer id, always below it. */
#define RECV_TAG 0xffffffffu

static struct io_uring ring;
static struct io_uring_buf_ring* buf_ring;
static unsigned char* buffers;
static int buffers_added; /* added to the ring since it was last published */
static int udp_fd;
static int recv_armed;
static int starved; /* the recvmsg ended with -ENOBUFS: armed again once buffers come back */

/* What the recvmsg asks for: room for the address, no control data. Read by the kernel when it
 * arms the operation; the address itself lands in each buffer. */
static struct msghdr recv_shape;
/* One send per buffer at most, so each buffer has its own message and vector. */
static struct msghdr send_msg[BUF_COUNT];
static struct iovec send_iov[BUF_COUNT];

static void recycle(int bid) {
    io_uring_buf_ring_add(buf_ring, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), buffers_added);
    ++buffers_added;
}

static void publish_buffers(void) {
    if (buffers_added > 0) {
        io_uring_buf_ring_advance(buf_ring, buffers_added);
        buffers_added = 0;
        starved = 0;
    }
}

static void arm_recv(void) {
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_recvmsg_multishot(sqe, udp_fd, &recv_shape, MSG_TRUNC);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, RECV_TAG);
    recv_armed = 1;
}

static void on_recv(const struct io_uring_cqe* cqe) {
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
        recv_armed = 0;
    }
    if (cqe->res < 0) {
        if (cqe->res == -ENOBUFS) {
            starved = 1;
            return;
        }
        if (cqe->res == -EINVAL) {
            peer_die("multishot recvmsg (Linux 6.0)", EINVAL);
        }
        return; /* anything else loses that datagram only; the loop arms again */
    }
    int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    unsigned char* buf = buffers + (size_t)bid * BUF_SIZE;
    struct io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buf, cqe->res, &recv_shape);
    if (out == NULL || (out->flags & MSG_TRUNC) != 0 || out->namelen > recv_shape.msg_namelen) {
        recycle(bid);
        return;
    }
    send_iov[bid].iov_base = io_uring_recvmsg_payload(out, &recv_shape);
    send_iov[bid].iov_len = io_uring_recvmsg_payload_length(out, cqe->res, &recv_shape);
    send_msg[bid].msg_name = io_uring_recvmsg_name(out);
    send_msg[bid].msg_namelen = out->namelen;
    send_msg[bid].msg_iov = &send_iov[bid];
    send_msg[bid].msg_iovlen = 1;
    struct io_uring_sqe* sqe = uring_peer_get_sqe(&ring);
    io_uring_prep_sendmsg(sqe, udp_fd, &send_msg[bid], MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)bid);
}

static void setup_ring(void) {
    uring_peer_ring(&ring, SQ_ENTRIES, CQ_ENTRIES, "raw_uring_udp_echo");
    buf_ring = uring_peer_buf_ring(&ring, BUF_COUNT, BUF_GROUP);
    buffers = uring_peer_buffers(BUF_COUNT, BUF_SIZE);
    for (unsigned bid = 0; bid < BUF_COUNT; ++bid) {
        recycle((int)bid);
    }
    publish_buffers();
}

int main(int argc, char** argv) {
    struct peer_args args = peer_parse(argc, argv, "raw_uring_udp_echo");
    peer_setup(&args);
    udp_fd = peer_bind(SOCK_DGRAM, args.port, 0);
    recv_shape.msg_namelen = sizeof(struct sockaddr_storage);
    setup_ring();

    while (!peer_stop) {
        publish_buffers();
        if (!recv_armed && !starved) {
            arm_recv();
        }
        uring_peer_submit_and_wait(&ring);
        unsigned head;
        unsigned seen = 0;
        struct io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            uint64_t data = io_uring_cqe_get_data64(cqe);
            if (data == RECV_TAG) {
                on_recv(cqe);
            } else {
                /* A send completed (or failed, losing that answer only): its buffer is free. */
                recycle((int)data);
            }
            ++seen;
        }
        io_uring_cq_advance(&ring, seen);
    }
    close(udp_fd);
    io_uring_queue_exit(&ring);
    return 0;
}
