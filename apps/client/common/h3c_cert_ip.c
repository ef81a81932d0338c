#include "h3c_cert_ip.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* A view into DER bytes. */
typedef struct der {
  const uint8_t *p;
  size_t n;
} der;

/* Reads one TLV (single-byte tags only; certificates use no others in the
 * parts walked here). Returns 0 and advances b, or -1 on malformed input. */
static int der_next(der *b, uint8_t *tag, der *val) {
  if (b->n < 2)
    return -1;
  *tag = b->p[0];
  size_t len = b->p[1], hdr = 2;
  if (len & 0x80) {
    size_t nb = len & 0x7f;
    if (nb == 0 || nb > 4 || b->n < 2 + nb)
      return -1;
    len = 0;
    for (size_t i = 0; i < nb; i++)
      len = (len << 8) | b->p[2 + i];
    hdr += nb;
  }
  if (b->n - hdr < len)
    return -1;
  val->p = b->p + hdr;
  val->n = len;
  b->p += hdr + len;
  b->n -= hdr + len;
  return 0;
}

/* Descends into the next element, which must have the given tag. */
static int der_enter(der *b, uint8_t want, der *val) {
  uint8_t tag;
  return der_next(b, &tag, val) == 0 && tag == want ? 0 : -1;
}

static bool san_has_ip(der names, const uint8_t *ip, size_t iplen) {
  uint8_t tag;
  der v;
  while (names.n > 0 && der_next(&names, &tag, &v) == 0)
    if (tag == 0x87 && v.n == iplen && memcmp(v.p, ip, iplen) == 0)
      return true; /* [7] iPAddress */
  return false;
}

/* Walks Extensions for subjectAltName (2.5.29.17). */
static bool exts_have_ip(der exts, const uint8_t *ip, size_t iplen) {
  static const uint8_t san_oid[] = {0x55, 0x1d, 0x11};
  der ext, oid, val, names;
  uint8_t tag;
  while (exts.n > 0 && der_enter(&exts, 0x30, &ext) == 0) {
    if (der_enter(&ext, 0x06, &oid) != 0)
      return false;
    if (oid.n != sizeof(san_oid) || memcmp(oid.p, san_oid, oid.n) != 0)
      continue;
    if (der_next(&ext, &tag, &val) != 0)
      return false;
    if (tag == 0x01 && der_next(&ext, &tag, &val) != 0) /* critical flag */
      return false;
    if (tag != 0x04 || der_enter(&val, 0x30, &names) != 0)
      return false;
    return san_has_ip(names, ip, iplen);
  }
  return false;
}

bool h3c_cert_matches_ip(const uint8_t *der_bytes, size_t len, const char *ip) {
  uint8_t addr[16];
  size_t alen = 4;
  if (inet_pton(AF_INET, ip, addr) != 1) {
    if (inet_pton(AF_INET6, ip, addr) != 1)
      return false;
    alen = 16;
  }
  der b = {der_bytes, len}, cert, tbs, item, exts;
  uint8_t tag;
  if (der_enter(&b, 0x30, &cert) != 0 || der_enter(&cert, 0x30, &tbs) != 0)
    return false;
  /* TBSCertificate fields before [3] extensions are skipped one by one. */
  while (tbs.n > 0 && der_next(&tbs, &tag, &item) == 0) {
    if (tag == 0xa3)
      return der_enter(&item, 0x30, &exts) == 0 &&
             exts_have_ip(exts, addr, alen);
  }
  return false;
}
