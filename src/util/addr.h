/* Socket addresses from text: a literal IPv4 or IPv6 address, and
 * "IPV4:PORT" / "[IPV6]:PORT". No name lookups: every address h3q and its
 * test tools take is a literal. */
#ifndef H3Q_UTIL_ADDR_H
#define H3Q_UTIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* *ss and *len for the literal IPv4 or IPv6 address ip and port (host
 * order); false (and *ss cleared) when ip is neither. */
bool addr_from_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                  socklen_t *len);

/* Splits "HOST:PORT" at its last colon: host (brackets removed, copied
 * into host[host_size], NUL-terminated) and the port (1 to 5 digits, at
 * most 65535). *bracketed says whether HOST was "[...]". false for a
 * missing or empty part, a host too long for host_size, or a bad port. */
bool addr_split_hostport(const char *s, char *host, size_t host_size,
                         uint16_t *port, bool *bracketed);

/* "IPV4:PORT" or "[IPV6]:PORT" (an IPv6 address must be in brackets, an
 * IPv4 one must not) into *ss and *len; false otherwise. */
bool addr_parse_hostport(const char *s, struct sockaddr_storage *ss,
                         socklen_t *len);

#endif
