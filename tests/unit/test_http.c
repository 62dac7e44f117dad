/* tests/unit/test_http.c: the stats port's HTTP request parser (every prefix of a good
 * request is "more", the whole of it "done"), its refusals, the sniff that tells HTTP
 * from the twemproxy JSON client, the answers, and Prometheus label escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stats/http.h"
#include "stats/text.h"

static enum http_status
parse(const char *s, struct http_req *r)
{
    return http_parse(s, strlen(s), r);
}

static void
test_good_requests(void **state)
{
    static const char *const good[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
        "GET /metrics?x=1 HTTP/1.0\n\n",
        "HEAD /health HTTP/1.1\r\n\r\n",
    };
    static const char *const path[] = { "/metrics", "/metrics", "/health" };
    static const char *const method[] = { "GET", "GET", "HEAD" };
    struct http_req r;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t n = strlen(good[i]);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(http_parse(good[i], k, &r), HTTP_MORE);
        memset(&r, 0, sizeof(r));
        assert_int_equal(http_parse(good[i], n, &r), HTTP_DONE);
        assert_string_equal(r.path, path[i]);
        assert_string_equal(r.method, method[i]);
        assert_int_equal(r.len, n);
    }
    /* bytes after the blank line (a pipelined second request) are not part of it */
    const char *two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    assert_int_equal(parse(two, &r), HTTP_DONE);
    assert_string_equal(r.path, "/a");
    assert_int_equal(r.len, strlen("GET /a HTTP/1.1\r\n\r\n"));
}

static void
test_bad_requests(void **state)
{
    static const char *const bad[] = {
        "get /metrics HTTP/1.1\r\n\r\n",        /* method in lower case */
        "GET metrics HTTP/1.1\r\n\r\n",         /* not a path */
        "GET /metrics HTTP/2.0\r\n\r\n",
        "GET /metrics HTTP/1.1 x\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics\r\n\r\n",                 /* HTTP/0.9 */
        "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
        "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nbad name: x\r\n\r\n",
        "VERYLONGMETHOD /x HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n",
    };
    struct http_req r;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &r), HTTP_BAD);

    /* a path longer than HTTP_MAX_PATH, and a request past HTTP_MAX_REQUEST */
    char *big = malloc(HTTP_MAX_REQUEST + 64);
    assert_non_null(big);
    memset(big, 'a', HTTP_MAX_REQUEST + 63);
    memcpy(big, "GET /", 5);
    strcpy(big + HTTP_MAX_PATH + 5, " HTTP/1.1\r\n\r\n");
    assert_int_equal(parse(big, &r), HTTP_BAD);
    memset(big, 'a', HTTP_MAX_REQUEST + 63);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    big[HTTP_MAX_REQUEST + 63] = '\0';
    assert_int_equal(http_parse(big, HTTP_MAX_REQUEST - 1, &r), HTTP_MORE);
    assert_int_equal(http_parse(big, HTTP_MAX_REQUEST, &r), HTTP_BAD);
    assert_int_equal(parse(big, &r), HTTP_BAD);
    free(big);
}

static void
test_sniff(void **state)
{
    (void)state;
    assert_int_equal(http_sniff("", 0), HTTP_SNIFF_MORE);
    assert_int_equal(http_sniff("GE", 2), HTTP_SNIFF_MORE);
    assert_int_equal(http_sniff("GET ", 4), HTTP_SNIFF_YES);
    assert_int_equal(http_sniff("OPTIONS /", 9), HTTP_SNIFF_YES);
    assert_int_equal(http_sniff("stats\r\n", 7), HTTP_SNIFF_NO);
    assert_int_equal(http_sniff(" GET", 4), HTTP_SNIFF_NO);
    assert_int_equal(http_sniff("STATS\r\n", 7), HTTP_SNIFF_NO);
    assert_int_equal(http_sniff("ABCDEFGH", 8), HTTP_SNIFF_NO);
    assert_int_equal(http_sniff("ABCDEFG", 7), HTTP_SNIFF_MORE);
}

static void
test_answer_and_labels(void **state)
{
    struct text b = { 0 };
    size_t len = 0;

    (void)state;
    http_answer(&b, 503, "text/plain", "down\n", 5, false);
    char *out = text_take(&b, &len);
    assert_non_null(out);
    assert_string_equal(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 5\r\nCache-Control: no-cache\r\n"
                             "Connection: close\r\n\r\ndown\n");
    assert_int_equal(len, strlen(out));
    free(out);

    http_answer(&b, 405, "text/plain", "no\n", 3, true);   /* HEAD: no body */
    out = text_take(&b, &len);
    assert_non_null(strstr(out, "Allow: GET, HEAD\r\n"));
    assert_int_equal(len - 4, (size_t)(strstr(out, "\r\n\r\n") - out));
    free(out);

    text_label(&b, "a\"b\\c\nd");
    out = text_take(&b, &len);
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    free(out);

    out = text_take(&b, &len);   /* nothing appended: an empty text, not NULL */
    assert_non_null(out);
    assert_int_equal(len, 0);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_requests),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_answer_and_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
