#include "h3c_json.h"

#include <math.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t len;
  uint32_t min;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, min = 0x80;
  else if ((c & 0xf0) == 0xe0)
    len = 3, min = 0x800;
  else if ((c & 0xf8) == 0xf0)
    len = 4, min = 0x10000;
  else
    return 0;
  if (len > n)
    return 0;
  uint32_t cp = c & (0x7fu >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

static void put_escape(FILE *f, uint8_t c) {
  switch (c) {
  case '"':
    fputs("\\\"", f);
    break;
  case '\\':
    fputs("\\\\", f);
    break;
  case '\n':
    fputs("\\n", f);
    break;
  case '\r':
    fputs("\\r", f);
    break;
  case '\t':
    fputs("\\t", f);
    break;
  default:
    fprintf(f, "\\u%04x", c);
  }
}

void h3c_json_str(FILE *f, const uint8_t *s, size_t n) {
  fputc('"', f);
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
      put_escape(f, c);
      i++;
      continue;
    }
    size_t len = utf8_len(s + i, n - i);
    if (len == 0) {
      fputs("\\ufffd", f);
      i++;
      continue;
    }
    fwrite(s + i, 1, len, f);
    i += len;
  }
  fputc('"', f);
}

void h3c_json_cstr(FILE *f, const char *s) {
  if (s == NULL)
    fputs("null", f);
  else
    h3c_json_str(f, (const uint8_t *)s, strlen(s));
}

void h3c_json_num(FILE *f, double v) {
  fprintf(f, "%.3f", isfinite(v) ? v : 0.0);
}
