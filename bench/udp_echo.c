/* The classic UDP echo server: a blocking recvfrom, then sendto the sender. MSG_TRUNC makes
 * recvfrom return a datagram's real length, so one larger than the buffer is dropped instead of
 * being echoed short.
 *
 * Usage: udp_echo PORT [--cpu C] */
#include "peer.h"

#define MAX_DATAGRAM 65507

int main(int argc, char** argv) {
    struct peer_args args = peer_parse(argc, argv, "udp_echo");
    peer_setup(&args);
    int fd = peer_bind(SOCK_DGRAM, args.port, 0);
    static unsigned char buf[MAX_DATAGRAM];
    while (!peer_stop) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr*)&from, &from_len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            peer_die("recvfrom", errno);
        }
        if ((size_t)n > MAX_DATAGRAM) {
            continue;
        }
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr*)&from, from_len) < 0 &&
            errno != EINTR) {
            /* A full send buffer or an unreachable sender loses one datagram, as UDP may. */
            continue;
        }
    }
    close(fd);
    return 0;
}
