/* RFC 9218 Extensible Priorities: the priority field value (a Structured
 * Fields dictionary) as sent in the priority header and PRIORITY_UPDATE. */
#ifndef H3Q_HTTP_PRIORITY_H
#define H3Q_HTTP_PRIORITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRIORITY_DEFAULT_URGENCY 3

typedef struct priority {
  uint8_t urgency; /* 0 (most urgent) .. 7 */
  bool incremental;
} priority;

/* Applies the u and i parameters of value to *p, leaving the others as they
 * are. Per RFC 9218 section 4, unknown keys, out-of-range urgencies and
 * members of the wrong type are ignored; a value that is not a dictionary
 * at all changes nothing. */
void priority_parse(const char *value, size_t len, priority *p);

#endif
