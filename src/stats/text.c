/* src/stats/text.c: the growable text buffer of the stats documents (see text.h). */
#include "stats/text.h"

#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
reserve(struct text *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap != 0 ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void
text_put(struct text *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
text_puts(struct text *b, const char *s)
{
    text_put(b, s, strlen(s));
}

void
text_printf(struct text *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    ASSERT(n >= 0 && (size_t)n < sizeof(tmp));
    text_put(b, tmp, (size_t)n);
}

void
text_json_str(struct text *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    text_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        char esc[6];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            text_put(b, esc, 2);
        } else if (*c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*c >> 4];
            esc[5] = hex[*c & 0xf];
            text_put(b, esc, 6);
        } else {
            text_put(b, (const char *)c, 1);
        }
    }
    text_put(b, "\"", 1);
}

void
text_label(struct text *b, const char *s)
{
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '\\')
            text_put(b, "\\\\", 2);
        else if (*c == '"')
            text_put(b, "\\\"", 2);
        else if (*c == '\n')
            text_put(b, "\\n", 2);
        else
            text_put(b, c, 1);
    }
}

char *
text_take(struct text *b, size_t *len)
{
    if (b->p == NULL && reserve(b, 0))
        b->p[0] = '\0';   /* an empty document is "" */
    char *p = b->oom ? NULL : b->p;

    if (p == NULL)
        free(b->p);
    else
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
    return p;
}
