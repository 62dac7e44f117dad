/* src/stats/http.h: the HTTP/1.x requests the stats port answers, parsed from the bytes
 * read so far. Pure: no sockets, no allocation; the unit tests and the stats port run the
 * same code. */
#ifndef KM_STATS_HTTP_H
#define KM_STATS_HTTP_H

#include "stats/text.h"

#include <stdbool.h>
#include <stddef.h>

/* The most a request (line and headers) may take; past it the answer is 400. */
#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_PATH    256

enum http_sniff {
    HTTP_SNIFF_MORE,           /* too few bytes to tell */
    HTTP_SNIFF_YES,            /* a method token and a space: an HTTP request line */
    HTTP_SNIFF_NO,             /* anything else: the twemproxy JSON client */
};

/* Whether the first bytes of a connection begin an HTTP request line. */
enum http_sniff http_sniff(const char *buf, size_t len);

enum http_status {
    HTTP_MORE,                 /* the request is not complete yet */
    HTTP_DONE,                 /* request line and headers read: *req is filled */
    HTTP_BAD,                  /* malformed, or over HTTP_MAX_REQUEST */
};

struct http_req {
    char method[8];            /* as sent, NUL-terminated */
    char path[HTTP_MAX_PATH];  /* the target's path, without its query */
    size_t len;                /* bytes the request took (line, headers, blank line) */
};

/* Parse the request at buf (len bytes read so far). A request line is
 * "METHOD SP target SP HTTP/1.x", lines end in CRLF or LF, and the headers (not
 * interpreted: the stats port answers every request the same way) end at an empty line.
 * A body, which no GET has, is not read. */
enum http_status http_parse(const char *buf, size_t len, struct http_req *req);

/* Append to b an HTTP/1.1 answer with this status (200, 400, 404, 405, 503), content
 * type and body, which closes the connection; head: the headers alone (a HEAD request),
 * Content-Length still that of the body. */
void http_answer(struct text *b, int status, const char *ctype, const char *body, size_t len,
                 bool head);

#endif
