/* https:// URL parsing and host resolution for the client programs. */
#ifndef H3C_URL_H
#define H3C_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct h3c_url {
  char *host;      /* without IPv6 brackets: for getaddrinfo and SNI */
  char *port;      /* decimal, "443" when the URL has none */
  char *authority; /* host[:port] as written (brackets kept): :authority */
  char *path;      /* path and query, at least "/"; fragment dropped */
  bool host_is_ip; /* IPv4/IPv6 literal: no SNI, certificate IP check */
} h3c_url;

/* Parses s into u (all strings malloc'ed). Returns 0, or -1 with *err set
 * to a static message. */
int h3c_url_parse(const char *s, h3c_url *u, const char **err);
void h3c_url_free(h3c_url *u);

/* True when a and b name the same origin (host and port). */
bool h3c_url_same_origin(const h3c_url *a, const h3c_url *b);

/* Resolves host:port to the first UDP address getaddrinfo returns. Returns
 * 0, or -1 with a message in err. */
int h3c_resolve(const char *host, const char *port,
                struct sockaddr_storage *out, socklen_t *out_len, char *err,
                size_t errlen);

#endif
