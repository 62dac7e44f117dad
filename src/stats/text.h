/* src/stats/text.h: a growable text buffer for the documents the stats port serves (the
 * JSON snapshot, the Prometheus exposition, HTTP answers). After a failed allocation
 * every append is a no-op and oom stays set, so a builder appends freely and checks once
 * at the end. */
#ifndef KM_STATS_TEXT_H
#define KM_STATS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct text {
    char *p;                   /* NUL-terminated once anything was appended */
    size_t len, cap;
    bool oom;
};

void text_put(struct text *b, const char *s, size_t n);
void text_puts(struct text *b, const char *s);
/* Formatted; one call appends at most 127 bytes. */
void text_printf(struct text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string with its quotes: '"' and '\' escaped, control bytes as \u00XX.
 * Other bytes pass unchanged (config text is UTF-8: libyaml checks it). */
void text_json_str(struct text *b, const char *s);
/* s as a Prometheus label value, without quotes: '\', '"' and newline escaped. */
void text_label(struct text *b, const char *s);
/* The text, handed over (*len its length); NULL after a failed allocation (nothing is
 * kept then). b is left empty. */
char *text_take(struct text *b, size_t *len);

#endif
