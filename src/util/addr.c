#include "util/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

bool addr_from_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                  socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return true;
  }
  memset(ss, 0, sizeof *ss);
  return false;
}

/* 1 to 5 decimal digits, at most 65535. */
static bool parse_port(const char *p, uint16_t *port) {
  size_t n = strlen(p);
  if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
    return false;
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (unsigned long)(p[i] - '0');
  if (v > 65535)
    return false;
  *port = (uint16_t)v;
  return true;
}

bool addr_split_hostport(const char *s, char *host, size_t host_size,
                         uint16_t *port, bool *bracketed) {
  const char *colon = strrchr(s, ':');
  if (!colon || !parse_port(colon + 1, port))
    return false;
  const char *b = s, *e = colon;
  *bracketed = e - b >= 2 && *b == '[' && e[-1] == ']';
  if (*bracketed) {
    b++;
    e--;
  }
  size_t n = (size_t)(e - b);
  if (n == 0 || n >= host_size)
    return false;
  memcpy(host, b, n);
  host[n] = '\0';
  return true;
}

bool addr_parse_hostport(const char *s, struct sockaddr_storage *ss,
                         socklen_t *len) {
  char host[INET6_ADDRSTRLEN + 1];
  uint16_t port;
  bool bracketed;
  if (!addr_split_hostport(s, host, sizeof host, &port, &bracketed))
    return false;
  bool v6 = strchr(host, ':') != NULL;
  return v6 == bracketed && addr_from_ip(host, port, ss, len);
}
