// Built with -m32: its setsockopt() and sendto() are compat (32-bit)
// syscalls, for which the kernel runs no cgroup/setsockopt program. It sets a
// source route as a sticky option and sends datagrams with it, so the test can
// see what the packet hook (cgroup_skb/egress) alone makes of them.
//
//   srcroute_compat32 lsrr|rthdr DEST PORT VIA COUNT
//
// Exit status: 0 when the option was accepted and every send succeeded;
// kSetsockoptFailed + errno when setsockopt() refused the option; else the
// errno of the failing send (EPERM for a dropped packet).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kSetsockoptFailed = 64 };

// LSRR with one hop, padded with end-of-list: the first hop is `via`.
static int SetLsrr(int fd, const struct in_addr* via) {
  unsigned char opt[8] = {0x83, 7, 4, 0, 0, 0, 0, 0};
  memcpy(&opt[3], via, 4);
  return setsockopt(fd, IPPROTO_IP, IP_OPTIONS, opt, sizeof(opt));
}

// Segment routing header (type 4): segments are stored last first, and
// segments[segments_left] = `via` is the first hop.
static int SetRthdr(int fd, const struct in6_addr* via,
                    const struct in6_addr* dst) {
  unsigned char hdr[8 + 2 * 16] = {0, 4, 4, 1, 1};
  memcpy(&hdr[8], dst, 16);
  memcpy(&hdr[24], via, 16);
  return setsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, hdr, sizeof(hdr));
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s lsrr|rthdr DEST PORT VIA COUNT\n", argv[0]);
    return 100;
  }
  int v6 = strcmp(argv[1], "rthdr") == 0;
  int port = atoi(argv[3]);
  int count = atoi(argv[5]);
  struct sockaddr_in dst4 = {.sin_family = AF_INET, .sin_port = htons(port)};
  struct sockaddr_in6 dst6 = {.sin6_family = AF_INET6,
                              .sin6_port = htons(port)};
  struct in_addr via4;
  struct in6_addr via6;
  int parsed = v6 ? inet_pton(AF_INET6, argv[2], &dst6.sin6_addr) == 1 &&
                        inet_pton(AF_INET6, argv[4], &via6) == 1
                  : inet_pton(AF_INET, argv[2], &dst4.sin_addr) == 1 &&
                        inet_pton(AF_INET, argv[4], &via4) == 1;
  if (!parsed || count < 1 || count > 100) return 100;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return errno;
  int rc = v6 ? SetRthdr(fd, &via6, &dst6.sin6_addr) : SetLsrr(fd, &via4);
  if (rc != 0) return kSetsockoptFailed + errno;
  for (int i = 0; i < count; ++i) {
    ssize_t sent =
        v6 ? sendto(fd, "x", 1, 0, (struct sockaddr*)&dst6, sizeof(dst6))
           : sendto(fd, "x", 1, 0, (struct sockaddr*)&dst4, sizeof(dst4));
    if (sent < 0) return errno;
  }
  close(fd);
  return 0;
}
