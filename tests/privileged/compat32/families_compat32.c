// Built with -m32: i386 glibc creates sockets through socketcall(), whose
// arguments (the family among them) are behind a pointer that a seccomp
// filter cannot read. It tries socket(FAMILY, SOCK_DGRAM, 0) for each
// family number given, then socketpair(AF_UNIX), and prints one line each:
//
//   families_compat32 FAMILY...   ->   "socket(17) EAFNOSUPPORT", "socketpair
//   ok"
//
// Exit status 0 (the lines are the result).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char* Result(int rc) {
  return rc < 0 ? strerrorname_np(errno) : "ok";
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const int fd = socket(atoi(argv[i]), SOCK_DGRAM, 0);
    printf("socket(%s) %s\n", argv[i], Result(fd));
    if (fd >= 0) close(fd);
  }
  int pair[2];
  const int rc = socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
  printf("socketpair %s\n", Result(rc));
  if (rc == 0) {
    close(pair[0]);
    close(pair[1]);
  }
  return 0;
}
