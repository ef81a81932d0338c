#include "http/priority.h"

#include <string.h>

static bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '*';
}

static size_t skip_ows(const char *s, size_t i, size_t len) {
  while (i < len && (s[i] == ' ' || s[i] == '\t'))
    i++;
  return i;
}

/* One member "key[=value][;params]" from s[i..end). */
static void apply_member(const char *s, size_t i, size_t end, priority *p) {
  size_t k = i;
  while (i < end && is_key_char(s[i]))
    i++;
  size_t klen = i - k;
  const char *v = i < end && s[i] == '=' ? s + i + 1 : NULL;
  size_t vlen = v ? end - (i + 1) : 0;
  while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;
  const char *semi = v ? memchr(v, ';', vlen) : NULL;
  if (semi)
    vlen = (size_t)(semi - v); /* parameters do not change the value */
  if (klen == 1 && s[k] == 'u' && v && vlen == 1 && v[0] >= '0' && v[0] <= '7')
    p->urgency = (uint8_t)(v[0] - '0');
  else if (klen == 1 && s[k] == 'i' && !v)
    p->incremental = true; /* bare key: boolean true */
  else if (klen == 1 && s[k] == 'i' && vlen == 2 && v[0] == '?' &&
           (v[1] == '0' || v[1] == '1'))
    p->incremental = v[1] == '1';
}

void priority_parse(const char *value, size_t len, priority *p) {
  size_t i = skip_ows(value, 0, len);
  while (i < len) {
    const char *comma = memchr(value + i, ',', len - i);
    size_t end = comma ? (size_t)(comma - value) : len;
    apply_member(value, i, end, p);
    if (!comma)
      break;
    i = skip_ows(value, end + 1, len);
  }
}
