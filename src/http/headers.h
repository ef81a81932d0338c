/* Header field helpers shared by request parsing and response building. */
#ifndef H3Q_HTTP_HEADERS_H
#define H3Q_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True if name is a non-empty RFC 9110 token (tchar*). Upper case allowed;
 * callers that need lower case check with header_name_is_lower. */
bool header_name_is_token(const char *name, size_t len);
bool header_name_is_lower(const char *name, size_t len);

/* True if value has no NUL, CR or LF and no leading/trailing SP/HTAB. */
bool header_value_is_valid(const char *value, size_t len);

/* ASCII case-insensitive equality of two byte strings. */
bool ascii_case_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Lowercases ASCII letters in place. */
void ascii_lower(char *s, size_t len);

/* content-type for a file path by its extension; "application/octet-stream"
 * when unknown. Returns a static string. */
const char *mime_type_for_path(const char *path);

#endif
