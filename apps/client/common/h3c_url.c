#include "h3c_url.h"

#include "h3c_args.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_range(const char *s, size_t n) {
  char *p = h3c_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" into u->host/u->port. */
static int parse_authority(const char *a, size_t n, h3c_url *u,
                           const char **err) {
  const char *port = NULL;
  size_t hlen;
  const char *h = a;
  if (n > 0 && a[0] == '[') {
    const char *close = memchr(a, ']', n);
    if (close == NULL)
      return *err = "unterminated '[' in host", -1;
    h = a + 1;
    hlen = (size_t)(close - h);
    if ((size_t)(close + 1 - a) < n) {
      if (close[1] != ':')
        return *err = "unexpected character after ']'", -1;
      port = close + 2;
    }
  } else {
    const char *colon = memchr(a, ':', n);
    hlen = colon ? (size_t)(colon - a) : n;
    port = colon ? colon + 1 : NULL;
  }
  if (memchr(a, '@', n) != NULL)
    return *err = "user information in URLs is not supported", -1;
  if (hlen == 0)
    return *err = "empty host", -1;
  /* Non-ASCII names must come punycode-encoded (quiche needs UTF-8 and
   * getaddrinfo ASCII); controls and spaces are never valid. */
  for (size_t i = 0; i < hlen; i++)
    if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f)
      return *err = "invalid character in host", -1;
  u->host = dup_range(h, hlen);
  size_t plen = port ? (size_t)(a + n - port) : 0;
  if (port && (plen == 0 || plen > 5))
    return *err = "invalid port", -1;
  for (size_t i = 0; i < plen; i++)
    if (!isdigit((unsigned char)port[i]))
      return *err = "invalid port", -1;
  u->port = port ? dup_range(port, plen) : h3c_xstrdup("443");
  long pv = strtol(u->port, NULL, 10);
  if (pv < 1 || pv > 65535)
    return *err = "port out of range", -1;
  return 0;
}

static bool is_ip_literal(const char *host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host, buf) == 1 ||
         inet_pton(AF_INET6, host, buf) == 1;
}

/* Copies path and query, adding the leading '/' when the URL has only a
 * query; control characters and spaces are refused rather than escaped. */
static int parse_path(const char *p, h3c_url *u, const char **err) {
  size_t n = strcspn(p, "#");
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
      return *err = "space or control character in path", -1;
  if (n == 0 || p[0] == '?') {
    u->path = h3c_xmalloc(n + 2);
    u->path[0] = '/';
    memcpy(u->path + 1, p, n);
    u->path[n + 1] = '\0';
  } else {
    u->path = dup_range(p, n);
  }
  return 0;
}

int h3c_url_parse(const char *s, h3c_url *u, const char **err) {
  memset(u, 0, sizeof(*u));
  static const char scheme[] = "https://";
  if (strncasecmp(s, scheme, sizeof(scheme) - 1) != 0)
    return *err = "only https:// URLs are supported", -1;
  const char *a = s + sizeof(scheme) - 1;
  size_t alen = strcspn(a, "/?#");
  if (parse_authority(a, alen, u, err) != 0 ||
      parse_path(a + alen, u, err) != 0) {
    h3c_url_free(u);
    return -1;
  }
  u->authority = dup_range(a, alen);
  u->host_is_ip = is_ip_literal(u->host);
  if (!u->host_is_ip && a[0] == '[') {
    h3c_url_free(u);
    return *err = "invalid IPv6 address", -1;
  }
  return 0;
}

void h3c_url_free(h3c_url *u) {
  free(u->host);
  free(u->port);
  free(u->authority);
  free(u->path);
  memset(u, 0, sizeof(*u));
}

bool h3c_url_same_origin(const h3c_url *a, const h3c_url *b) {
  return strcasecmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

int h3c_resolve(const char *host, const char *port,
                struct sockaddr_storage *out, socklen_t *out_len, char *err,
                size_t errlen) {
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  hints.ai_flags = AI_NUMERICSERV;
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
    return -1;
  }
  memcpy(out, res->ai_addr, res->ai_addrlen);
  *out_len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}
