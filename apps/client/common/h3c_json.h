/* Just enough JSON output for the programs' machine-readable results. */
#ifndef H3C_JSON_H
#define H3C_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes bytes as a JSON string literal. Valid UTF-8 passes through;
 * control characters are escaped; invalid UTF-8 bytes become U+FFFD so the
 * output always parses. */
void h3c_json_str(FILE *f, const uint8_t *s, size_t n);

/* Same for a C string; NULL writes null. */
void h3c_json_cstr(FILE *f, const char *s);

/* Writes a finite double with 3 decimals (JSON has no NaN/inf: 0). */
void h3c_json_num(FILE *f, double v);

#endif
