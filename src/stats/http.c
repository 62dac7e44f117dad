/* src/stats/http.c: parsing the stats port's HTTP requests (see http.h). */
#include "stats/http.h"

#include <string.h>

#define METHOD_MAX 7

static bool
is_method_char(char c)
{
    return c >= 'A' && c <= 'Z';
}

enum http_sniff
http_sniff(const char *buf, size_t len)
{
    for (size_t i = 0; i < len && i <= METHOD_MAX; i++) {
        if (buf[i] == ' ')
            return i > 0 ? HTTP_SNIFF_YES : HTTP_SNIFF_NO;
        if (!is_method_char(buf[i]))
            return HTTP_SNIFF_NO;
    }
    return len > METHOD_MAX ? HTTP_SNIFF_NO : HTTP_SNIFF_MORE;
}

/* The end of the line that starts at buf[from]: the index of its LF, or -1 when no LF
 * has come yet. */
static long
line_end(const char *buf, size_t len, size_t from)
{
    const char *nl = memchr(buf + from, '\n', len - from);

    return nl != NULL ? (long)(nl - buf) : -1;
}

/* The request line buf[0..n) (its CR, if any, removed): into req. */
static bool
request_line(const char *buf, size_t n, struct http_req *req)
{
    const char *sp1 = memchr(buf, ' ', n);
    if (sp1 == NULL || sp1 == buf || (size_t)(sp1 - buf) > METHOD_MAX)
        return false;
    for (const char *c = buf; c < sp1; c++) {
        if (!is_method_char(*c))
            return false;
    }
    const char *target = sp1 + 1;
    const char *end = buf + n;
    const char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (sp2 == NULL || sp2 == target || *target != '/')
        return false;
    const char *version = sp2 + 1;
    if ((size_t)(end - version) != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
        (version[7] != '0' && version[7] != '1'))
        return false;
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    size_t plen = (size_t)((q != NULL ? q : sp2) - target);
    for (const char *c = target; c < sp2; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return false;
    }
    if (plen >= sizeof(req->path))
        return false;
    memcpy(req->method, buf, (size_t)(sp1 - buf));
    req->method[sp1 - buf] = '\0';
    memcpy(req->path, target, plen);
    req->path[plen] = '\0';
    return true;
}

enum http_status
http_parse(const char *buf, size_t len, struct http_req *req)
{
    size_t scan = len < HTTP_MAX_REQUEST ? len : HTTP_MAX_REQUEST;
    long eol = line_end(buf, scan, 0);

    if (eol < 0)
        return len >= HTTP_MAX_REQUEST ? HTTP_BAD : HTTP_MORE;
    size_t n = (size_t)eol;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (!request_line(buf, n, req))
        return HTTP_BAD;
    /* headers: each "name: value", up to the empty line */
    for (size_t at = (size_t)eol + 1;;) {
        eol = line_end(buf, scan, at);
        if (eol < 0)
            return len >= HTTP_MAX_REQUEST ? HTTP_BAD : HTTP_MORE;
        n = (size_t)eol - at;
        if (n > 0 && buf[at + n - 1] == '\r')
            n--;
        if (n == 0) {
            req->len = (size_t)eol + 1;
            return HTTP_DONE;
        }
        const char *colon = memchr(buf + at, ':', n);
        if (colon == NULL || colon == buf + at)
            return HTTP_BAD;
        for (const char *c = buf + at; c < colon; c++) {
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return HTTP_BAD;
        }
        at = (size_t)eol + 1;
    }
}

static const char *
reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default:  return "Error";
    }
}

void
http_answer(struct text *b, int status, const char *ctype, const char *body, size_t len,
            bool head)
{
    text_printf(b, "HTTP/1.1 %d %s\r\n", status, reason(status));
    text_printf(b, "Content-Type: %s\r\n", ctype);
    text_printf(b, "Content-Length: %zu\r\n", len);
    if (status == 405)
        text_puts(b, "Allow: GET, HEAD\r\n");
    text_puts(b, "Cache-Control: no-cache\r\nConnection: close\r\n\r\n");
    if (!head)
        text_put(b, body, len);
}
