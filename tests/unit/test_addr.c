/* Unit tests for util/addr: literal addresses, HOST:PORT splitting and the
 * strict "IPV4:PORT" / "[IPV6]:PORT" form. */
#include "check.h"
#include "util/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static uint16_t port_of(const struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET
                   ? ((const struct sockaddr_in *)ss)->sin_port
                   : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void test_from_ip(void) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  CHECK(addr_from_ip("127.0.0.1", 443, &ss, &len));
  CHECK(ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in));
  CHECK(port_of(&ss) == 443);
  CHECK(addr_from_ip("::1", 0, &ss, &len));
  CHECK(ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6));
  CHECK(!addr_from_ip("localhost", 1, &ss, &len));
  CHECK(ss.ss_family == 0);
  CHECK(!addr_from_ip("[::1]", 1, &ss, &len));
  CHECK(!addr_from_ip("", 1, &ss, &len));
}

static void test_split(void) {
  char host[16];
  uint16_t port = 0;
  bool br = true;
  CHECK(addr_split_hostport("a.b:65535", host, sizeof host, &port, &br));
  CHECK(strcmp(host, "a.b") == 0 && port == 65535 && !br);
  CHECK(addr_split_hostport("[::1]:0", host, sizeof host, &port, &br));
  CHECK(strcmp(host, "::1") == 0 && port == 0 && br);
  CHECK(addr_split_hostport("::1:7", host, sizeof host, &port, &br));
  CHECK(strcmp(host, "::1") == 0 && port == 7 && !br);
  const char *const bad[] = {"host",     "host:", ":1",
                             "[]:1",     "h:+1",  "h:65536",
                             "h:123456", "h: 1",  "0123456789abcdef:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(!addr_split_hostport(bad[i], host, sizeof host, &port, &br));
}

static void test_parse_hostport(void) {
  struct sockaddr_storage ss;
  socklen_t len;
  CHECK(addr_parse_hostport("127.0.0.1:9100", &ss, &len));
  CHECK(ss.ss_family == AF_INET && port_of(&ss) == 9100);
  CHECK(addr_parse_hostport("[::1]:0", &ss, &len));
  CHECK(ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6));
  const char *const bad[] = {"127.0.0.1",    "127.0.0.1:",    ":9100",
                             "::1:9100",     "[::1:9100",     "[127.0.0.1]:1",
                             "host:9100",    "1.2.3.4:65536", "1.2.3.4:-1",
                             "1.2.3.4:12ab", "1.2.3.4:123456"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(!addr_parse_hostport(bad[i], &ss, &len));
}

int main(void) {
  test_from_ip();
  test_split();
  test_parse_hostport();
  return check_report("test_addr");
}
