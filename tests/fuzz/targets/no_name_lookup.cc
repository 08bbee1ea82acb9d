// Linked into every fuzz target: the resolver functions of libc, defined here
// to abort, so that an input which would make egress look a name up (and send
// a fuzzer's word to the machine's DNS servers) is a crash with that input
// instead of a query. These definitions take precedence over libc's and over
// the sanitizers' interceptors, which are weak.
#include <netdb.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>

namespace {

[[noreturn]] void NameLookup(const char* function, const char* name) {
  std::fprintf(stderr, "name lookup reached %s(\"%s\")\n", function,
               name != nullptr ? name : "");
  std::abort();
}

}  // namespace

extern "C" {

int getaddrinfo(const char* node, const char*, const struct addrinfo*,
                struct addrinfo**) {
  NameLookup("getaddrinfo", node);
}

int getnameinfo(const struct sockaddr*, socklen_t, char*, socklen_t, char*,
                socklen_t, int) {
  NameLookup("getnameinfo", nullptr);
}

struct hostent* gethostbyname(const char* name) {
  NameLookup("gethostbyname", name);
}

struct hostent* gethostbyname2(const char* name, int) {
  NameLookup("gethostbyname2", name);
}

int gethostbyname_r(const char* name, struct hostent*, char*, size_t,
                    struct hostent**, int*) {
  NameLookup("gethostbyname_r", name);
}

}  // extern "C"
