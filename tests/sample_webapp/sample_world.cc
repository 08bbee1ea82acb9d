// sample_world: the servers the sample web application talks to, for the
// demo (scripts/run.sh): a DNS resolver, an SMTP sink and an HTTP API, each on
// the loopback address:port given, until SIGTERM/SIGINT.
//
//   sample_world --resolver 127.0.10.53:53 --smtp 127.0.10.25:25
//                --api 127.203.113.10:443
//
// Prints "ready" once all three accept, and on exit what each one served.
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cstdlib>
#include <string>

#include "tests/testing/fake_services.h"

namespace {

bool Split(const char* arg, std::string* addr, uint16_t* port) {
  std::string s = arg;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *addr = s.substr(0, colon);
  int p = atoi(s.c_str() + colon + 1);
  if (p <= 0 || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dns_addr, smtp_addr, api_addr;
  uint16_t dns_port = 0, smtp_port = 0, api_port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    bool ok = false;
    if (strcmp(argv[i], "--resolver") == 0) {
      ok = Split(argv[i + 1], &dns_addr, &dns_port);
    } else if (strcmp(argv[i], "--smtp") == 0) {
      ok = Split(argv[i + 1], &smtp_addr, &smtp_port);
    } else if (strcmp(argv[i], "--api") == 0) {
      ok = Split(argv[i + 1], &api_addr, &api_port);
    }
    if (!ok) {
      fprintf(stderr, "sample_world: bad argument %s %s\n", argv[i],
              argv[i + 1]);
      return 2;
    }
  }
  if (dns_port == 0 || smtp_port == 0 || api_port == 0) {
    fprintf(stderr,
            "usage: sample_world --resolver ADDR:PORT --smtp ADDR:PORT --api "
            "ADDR:PORT\n");
    return 2;
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);  // the server threads inherit it
  auto dns = egress::testing::FakeDnsServer::Create(dns_addr, "127.203.113.10",
                                                    dns_port);
  auto smtp = egress::testing::SmtpSink::Create(smtp_addr, smtp_port);
  auto api = egress::testing::HttpApiServer::Create(api_addr, api_port);
  for (const absl::Status& st : {dns.status(), smtp.status(), api.status()}) {
    if (!st.ok()) {
      fprintf(stderr, "sample_world: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  printf("ready\n");
  fflush(stdout);
  int sig = 0;
  sigwait(&mask, &sig);
  printf("served: %d DNS queries, %d mails, %d API calls\n", (*dns)->queries(),
         (*smtp)->mails(), (*api)->requests());
  return 0;
}
