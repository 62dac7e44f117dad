/* tests/unit/test_resp.c: RESP tokenizers fed whole, split at every byte, and byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/resp.h"

/*
 * Each case is an input and the event log expected from it, written by hand from the
 * RESP rules (offsets counted on the input). The runner feeds the input in chunks, each
 * chunk copied to a malloc'd buffer of exactly its size so that ASan catches any read
 * past it, resets after every DONE and keeps going (pipelines), and writes a log:
 *   request ARG   A<pos>,<len>,<hdr>:<the argument's bytes, found through the offsets;
 *                 control and high bytes as \\xHH>
 *   reply ARG     A<pos>,<len>,<type><ival>
 *   request DONE  D<offset of the message in the input>+<msglen>
 *   reply DONE    D<offset>+<msglen>,<type><ival>
 *   ERROR         E:<reason>          (the run stops)
 *   end of input inside a message: P<msglen so far>
 * The log must be the same for every way of cutting the input.
 */

#define LOG_MAX (256 * 1024)

struct logbuf {
    char   s[LOG_MAX];
    size_t len;
};

static void
log_add(struct logbuf *l, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (l->len > 0 && l->len < sizeof(l->s) - 1)
        l->s[l->len++] = ' ';
    va_start(ap, fmt);
    r = vsnprintf(l->s + l->len, sizeof(l->s) - l->len, fmt, ap);
    va_end(ap);
    assert_true(r >= 0 && (size_t)r < sizeof(l->s) - l->len);
    l->len += (size_t)r;
}

/* Append bytes, with control bytes, '\\' and bytes >= 0x7f written as \\xHH. */
static void
log_bytes(struct logbuf *l, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(l->len + 5 < sizeof(l->s));
        if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
            l->len += (size_t)snprintf(l->s + l->len, 5, "\\x%02x", p[i]);
        else
            l->s[l->len++] = (char)p[i];
    }
    l->s[l->len] = '\0';
}

/* Limits a case may override; 0 = keep the default. */
struct limits {
    uint64_t max_bulk;
    uint64_t max_args;
    uint32_t max_inline;
    uint32_t max_depth;
};

/* Chunk boundaries: cuts[0] = 0 < ... <= cuts[ncuts-1] = len (empty chunks allowed). */
struct cuts {
    size_t *at;
    size_t  n;
};

/* A private copy of in[a..b) in a buffer of exactly that size. */
static uint8_t *
chunk_copy(const uint8_t *in, size_t a, size_t b)
{
    uint8_t *c = malloc(b - a > 0 ? b - a : 1);

    assert_non_null(c);
    memcpy(c, in + a, b - a);
    return c;
}

/* ---------------------------------------------------------------- requests */

static void
run_req(const uint8_t *in, size_t len, const struct cuts *cuts, const struct limits *lim,
        struct logbuf *lg)
{
    struct resp_req_parser p;
    uint64_t consumed = 0;      /* bytes consumed since the start of the input */
    bool stop = false;

    lg->len = 0;
    lg->s[0] = '\0';
    resp_req_init(&p);
    if (lim->max_bulk)
        p.max_bulk = lim->max_bulk;
    if (lim->max_args)
        p.max_args = lim->max_args;
    if (lim->max_inline)
        p.max_inline = lim->max_inline;

    for (size_t c = 0; c + 1 < cuts->n && !stop; c++) {
        size_t a = cuts->at[c], b = cuts->at[c + 1];
        uint8_t *chunk = chunk_copy(in, a, b);
        size_t done = 0;
        bool last = c + 2 == cuts->n;

        /* the final chunk is followed by empty calls, so a pending DONE comes out */
        for (;;) {
            struct resp_arg arg = { 0, 0, 0 };
            size_t used = SIZE_MAX;
            size_t avail = (b - a) - done;
            uint64_t before = resp_req_msglen(&p);
            int ev = resp_req_feed(&p, chunk + done, avail, &used, &arg);

            assert_true(used <= avail);
            done += used;
            consumed += used;
            /* msglen grows by what was consumed, except that skipped empty messages drop out */
            assert_true(resp_req_msglen(&p) <= before + used);
            if (ev == RESP_EV_AGAIN) {
                assert_int_equal(used, avail);
                if (!last || avail == 0)
                    break;
                continue;
            }
            if (ev == RESP_EV_ARG) {
                uint64_t start = consumed - resp_req_msglen(&p);
                uint64_t at = start + arg.pos;

                assert_true(at + arg.len <= len);
                log_add(lg, "A%llu,%llu,%u:", (unsigned long long)arg.pos,
                        (unsigned long long)arg.len, (unsigned)arg.hdr);
                log_bytes(lg, in + at, (size_t)arg.len);
                if (resp_req_inline(&p)) {
                    assert_int_equal(arg.hdr, 0);
                } else {
                    /* the raw token is [pos-hdr, pos+len+2): "$<len>\r\n<data>\r\n" */
                    char hdr[32];
                    int hl = snprintf(hdr, sizeof(hdr), "$%llu\r\n", (unsigned long long)arg.len);

                    assert_int_equal(arg.hdr, hl);
                    assert_memory_equal(in + at - arg.hdr, hdr, (size_t)hl);
                    assert_memory_equal(in + at + arg.len, "\r\n", 2);
                }
                continue;
            }
            if (ev == RESP_EV_DONE) {
                uint64_t ml = resp_req_msglen(&p);
                struct resp_arg dummy;
                size_t u2 = SIZE_MAX;

                log_add(lg, "D%llu+%llu", (unsigned long long)(consumed - ml),
                        (unsigned long long)ml);
                /* DONE is sticky until reset */
                assert_int_equal(resp_req_feed(&p, chunk + done, (b - a) - done, &u2, &dummy),
                                 RESP_EV_DONE);
                assert_int_equal(u2, 0);
                resp_req_reset(&p);
                continue;
            }
            assert_int_equal(ev, RESP_EV_ERROR);
            assert_non_null(p.err);
            log_add(lg, "E:%s", p.err);
            stop = true;
            break;
        }
        free(chunk);
    }
    if (!stop && resp_req_msglen(&p) > 0)
        log_add(lg, "P%llu", (unsigned long long)resp_req_msglen(&p));
}

/* ------------------------------------------------------------------ replies */

static void
run_rsp(const uint8_t *in, size_t len, const struct cuts *cuts, const struct limits *lim,
        struct logbuf *lg)
{
    struct resp_rsp_parser p;
    uint64_t consumed = 0;
    bool stop = false;

    lg->len = 0;
    lg->s[0] = '\0';
    resp_rsp_init(&p);
    if (lim->max_depth)
        p.max_depth = lim->max_depth;

    for (size_t c = 0; c + 1 < cuts->n && !stop; c++) {
        size_t a = cuts->at[c], b = cuts->at[c + 1];
        uint8_t *chunk = chunk_copy(in, a, b);
        size_t done = 0;
        bool last = c + 2 == cuts->n;

        for (;;) {
            struct resp_elem el = { 0, 0, 0, 0 };
            size_t used = SIZE_MAX;
            size_t avail = (b - a) - done;
            uint64_t before = resp_rsp_msglen(&p);
            int ev = resp_rsp_feed(&p, chunk + done, avail, &used, &el);

            assert_true(used <= avail);
            done += used;
            consumed += used;
            assert_int_equal(resp_rsp_msglen(&p), before + used);
            if (ev == RESP_EV_AGAIN) {
                assert_int_equal(used, avail);
                if (!last || avail == 0)
                    break;
                continue;
            }
            if (ev == RESP_EV_ARG) {
                uint64_t start = consumed - resp_rsp_msglen(&p);
                uint64_t at = start + el.pos;

                assert_true(el.len >= 3 && at + el.len <= len);
                assert_true(in[at] == (uint8_t)el.type || in[at] == '|');
                assert_memory_equal(in + at + el.len - 2, "\r\n", 2);
                log_add(lg, "A%llu,%llu,%c%lld", (unsigned long long)el.pos,
                        (unsigned long long)el.len, el.type, (long long)el.ival);
                continue;
            }
            if (ev == RESP_EV_DONE) {
                uint64_t ml = resp_rsp_msglen(&p);
                struct resp_elem dummy;
                size_t u2 = SIZE_MAX;

                log_add(lg, "D%llu+%llu,%c%lld", (unsigned long long)(consumed - ml),
                        (unsigned long long)ml, p.type, (long long)p.ival);
                assert_int_equal(resp_rsp_feed(&p, chunk + done, (b - a) - done, &u2, &dummy),
                                 RESP_EV_DONE);
                assert_int_equal(u2, 0);
                resp_rsp_reset(&p);
                continue;
            }
            assert_int_equal(ev, RESP_EV_ERROR);
            assert_non_null(p.err);
            log_add(lg, "E:%s", p.err);
            stop = true;
            break;
        }
        free(chunk);
    }
    if (!stop && resp_rsp_msglen(&p) > 0)
        log_add(lg, "P%llu", (unsigned long long)resp_rsp_msglen(&p));
}

/* ----------------------------------------------------------- split driver */

typedef void (*runner_fn)(const uint8_t *, size_t, const struct cuts *, const struct limits *,
                          struct logbuf *);

/*
 * Run one case (a) whole, (b) split in two at every position 0..len, (c) one byte at a
 * time, and require the expected log from each.
 */
static void
check_all_splits(runner_fn run, const char *name, const uint8_t *in, size_t len,
                 const struct limits *lim, const char *expect)
{
    struct logbuf *logp = calloc(1, sizeof(*logp));
    size_t at3[3];
    struct cuts cuts;
    size_t *bytes = malloc((len + 2) * sizeof(size_t));

    assert_non_null(bytes);
    assert_non_null(logp);

    size_t whole[2] = { 0, len };
    cuts.at = whole;
    cuts.n = 2;
    run(in, len, &cuts, lim, logp);
    if (strcmp(logp->s, expect) != 0)
        print_error("case '%s' (whole)\n", name);
    assert_string_equal(logp->s, expect);

    for (size_t k = 0; k <= len; k++) {
        at3[0] = 0;
        at3[1] = k;
        at3[2] = len;
        cuts.at = at3;
        cuts.n = 3;
        run(in, len, &cuts, lim, logp);
        if (strcmp(logp->s, expect) != 0)
            print_error("case '%s' split at %zu\n", name, k);
        assert_string_equal(logp->s, expect);
    }

    for (size_t k = 0; k <= len; k++)
        bytes[k] = k;
    cuts.at = bytes;
    cuts.n = len + 1;
    if (len == 0) {
        bytes[1] = 0;
        cuts.n = 2;
    }
    run(in, len, &cuts, lim, logp);
    if (strcmp(logp->s, expect) != 0)
        print_error("case '%s' byte by byte\n", name);
    assert_string_equal(logp->s, expect);
    free(bytes);
    free(logp);
}

struct tcase {
    const char   *name;
    const char   *in;
    size_t        len;      /* sizeof(literal) - 1: inputs may hold NUL bytes */
    struct limits lim;
    const char   *expect;
};

#define TC(name, lit, expect) { name, lit, sizeof(lit) - 1, { 0, 0, 0, 0 }, expect }
#define TCL(name, lit, lim, expect) { name, lit, sizeof(lit) - 1, lim, expect }

/* -------------------------------------------------------- request cases */

static const struct tcase req_cases[] = {
    /* multibulk */
    TC("ping", "*1\r\n$4\r\nPING\r\n", "A8,4,4:PING D0+14"),
    TC("set", "*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n",
       "A8,3,4:SET A17,3,4:foo A26,3,4:bar D0+31"),
    TC("empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "A8,4,4:ECHO A18,0,4: D0+20"),
    TC("only empty bulk", "*1\r\n$0\r\n\r\n", "A8,0,4: D0+10"),
    TC("binary bulk with CRLF inside", "*1\r\n$6\r\na\r\nb\r\n\r\n", "A8,6,4:a\\x0d\\x0ab\\x0d\\x0a D0+16"),
    TC("bulk with NUL and $*", "*1\r\n$5\r\n\0$*\r\0\r\n", "A8,5,4:\\x00$*\\x0d\\x00 D0+15"),
    TC("two digit bulk", "*1\r\n$12\r\nhello world!\r\n", "A9,12,5:hello world! D0+23"),
    TC("ten args", "*10\r\n$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n"
                   "$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n",
       "A9,1,4:x A16,1,4:x A23,1,4:x A30,1,4:x A37,1,4:x A44,1,4:x A51,1,4:x "
       "A58,1,4:x A65,1,4:x A72,1,4:x D0+75"),
    TC("partial multibulk", "*2\r\n$3\r\nGET\r\n$1\r\n", "A8,3,4:GET P17"),
    TC("partial count", "*12", "P3"),
    TC("max args accepted", "*1048576\r\n", "P10"),
    TCL("huge count with a raised limit", "*1000000000\r\n", ((struct limits){ 0, 1ULL << 40, 0, 0 }),
        "P13"),
    TC("max bulk accepted", "*1\r\n$536870912\r\nabc", "P19"),

    /* inline */
    TC("inline ping crlf", "PING\r\n", "A0,4,0:PING D0+6"),
    TC("inline lf", "GET foo\n", "A0,3,0:GET A4,3,0:foo D0+8"),
    TC("inline spacing", "  SET\tk  v \r\n", "A2,3,0:SET A6,1,0:k A9,1,0:v D0+13"),
    TC("inline vtab", "ECHO \vfoo\vbar\r\n", "A0,4,0:ECHO A6,7,0:foo\\x0bbar D0+15"),
    TC("inline bare CR separates", "ECHO a\rb\r\n", "A0,4,0:ECHO A5,1,0:a A7,1,0:b D0+10"),
    TC("inline high bytes", "SET \xc3\xa9 \xff\r\n", "A0,3,0:SET A4,2,0:\\xc3\\xa9 A7,1,0:\\xff D0+10"),
    TC("inline partial", "GET fo", "A0,3,0:GET P6"),
    TC("inline first byte $", "$4\r\n", "A0,2,0:$4 D0+4"),

    /* skipped empty messages */
    TC("skips", "*0\r\n*-1\r\n\r\n\n \t\r\n*1\r\n$4\r\nPING\r\n", "A8,4,4:PING D16+14"),
    TC("skip only", "*-1\r\n", ""),
    TC("trailing blank line", "PING\r\n\r\n", "A0,4,0:PING D0+6"),
    TC("skip min int64", "*-9223372036854775808\r\nPING\n", "A0,4,0:PING D23+5"),

    /* pipelines */
    TC("pipeline mixed",
       "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
       "A8,4,4:PING D0+14 A0,4,0:PING D14+6 A8,3,4:GET A17,1,4:k D20+20"),
    TC("pipeline with skip between",
       "GET a\r\n*0\r\nGET b\n",
       "A0,3,0:GET A4,1,0:a D0+7 A0,3,0:GET A4,1,0:b D11+6"),

    /* errors */
    TC("count not a number", "*abc\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count leading zero", "*01\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count plus", "*+1\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count minus zero", "*-0\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count empty", "*\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count space", "*1 \r\n", "E:Protocol error: invalid multibulk length"),
    TC("count CR without LF", "*1\r\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count over max_args", "*1048577\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count over int64", "*9223372036854775808\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count under int64", "*-9223372036854775809\r\n", "E:Protocol error: invalid multibulk length"),
    TC("count 1e9", "*1000000000\r\n", "E:Protocol error: invalid multibulk length"),
    TC("bulk header not $", "*1\r\n#3\r\n", "E:Protocol error: expected '$', got '#'"),
    TC("bulk header CR", "*1\r\n\r\n", "E:Protocol error: expected '$', got ' '"),
    TC("bulk header NUL", "*1\r\n\0", "E:Protocol error: expected '$', got ' '"),
    TC("second bulk header not $", "*2\r\n$1\r\na\r\n:1\r\n",
       "A8,1,4:a E:Protocol error: expected '$', got ':'"),
    TC("null bulk in request", "*1\r\n$-1\r\n", "E:Protocol error: invalid bulk length"),
    TC("bulk leading zero", "*1\r\n$03\r\nabc\r\n", "E:Protocol error: invalid bulk length"),
    TC("bulk plus", "*1\r\n$+4\r\nPING\r\n", "E:Protocol error: invalid bulk length"),
    TC("bulk empty length", "*1\r\n$\r\n", "E:Protocol error: invalid bulk length"),
    TC("bulk CR without LF", "*1\r\n$4\rx", "E:Protocol error: invalid bulk length"),
    TC("bulk over max", "*1\r\n$536870913\r\n", "E:Protocol error: invalid bulk length"),
    TCL("bulk over caller max", "*1\r\n$4\r\nPING\r\n", ((struct limits){ 3, 0, 0, 0 }),
        "E:Protocol error: invalid bulk length"),
    TC("bulk too long", "*1\r\n$4\r\nPINGxx", "E:Protocol error: expected CRLF after bulk data"),
    TC("bulk bad LF", "*1\r\n$4\r\nPING\rx", "E:Protocol error: expected CRLF after bulk data"),
    TC("error in second message", "*1\r\n$4\r\nPING\r\n*1\r\n$x",
       "A8,4,4:PING D0+14 E:Protocol error: invalid bulk length"),
    TC("inline double quote", "GET \"foo\"\r\n",
       "A0,3,0:GET E:Protocol error: quoted inline arguments are not supported"),
    TC("inline quote inside", "GET a'b\r\n",
       "A0,3,0:GET E:Protocol error: quoted inline arguments are not supported"),
    TC("inline NUL", "GET a\0b\r\n", "A0,3,0:GET E:Protocol error: NUL byte in inline request"),
    TCL("inline at max", "GET 123\r\n", ((struct limits){ 0, 0, 8, 0 }),
        "A0,3,0:GET A4,3,0:123 D0+9"),
    TCL("inline at max, LF only", "GET 1234\n", ((struct limits){ 0, 0, 8, 0 }),
        "A0,3,0:GET A4,4,0:1234 D0+9"),
    TCL("inline over max at CR", "GET 1234\r\n", ((struct limits){ 0, 0, 8, 0 }),
        "A0,3,0:GET E:Protocol error: too big inline request"),
    TCL("inline over max in token", "GET 12345678", ((struct limits){ 0, 0, 8, 0 }),
        "A0,3,0:GET E:Protocol error: too big inline request"),
    TCL("blank line over max", "         \n", ((struct limits){ 0, 0, 8, 0 }),
        "E:Protocol error: too big inline request"),
};

static void
test_req_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const struct tcase *t = &req_cases[i];

        check_all_splits(run_req, t->name, (const uint8_t *)t->in, t->len, &t->lim, t->expect);
    }
}

/* An inline line of exactly the default 64 KiB, and one byte more. */
static void
test_req_inline_default_limit(void **state)
{
    size_t n = 64 * 1024;
    uint8_t *in = malloc(n + 2);
    struct logbuf *logp = calloc(1, sizeof(*logp));
    struct limits lim = { 0, 0, 0, 0 };
    size_t whole[2] = { 0, n + 1 };
    struct cuts cuts = { whole, 2 };
    char expect[64];

    (void)state;
    assert_non_null(in);
    memset(in, 'a', n + 1);
    in[n] = '\n';
    run_req(in, n + 1, &cuts, &lim, logp);
    snprintf(expect, sizeof(expect), "A0,%zu,0:", n);
    assert_int_equal(strncmp(logp->s, expect, strlen(expect)), 0);
    snprintf(expect, sizeof(expect), " D0+%zu", n + 1);
    assert_string_equal(logp->s + logp->len - strlen(expect), expect);

    in[n] = 'a';
    in[n + 1] = '\n';
    whole[1] = n + 2;
    run_req(in, n + 2, &cuts, &lim, logp);
    assert_string_equal(logp->s, "E:Protocol error: too big inline request");
    free(logp);
    free(in);
}

/* Calls after an error keep answering ERROR and consume nothing; reset recovers and keeps limits. */
static void
test_req_error_sticky_and_reset(void **state)
{
    struct resp_req_parser p;
    struct resp_arg arg;
    size_t used;
    const uint8_t bad[] = "*x";
    const uint8_t good[] = "*1\r\n$4\r\nPING\r\n";

    (void)state;
    resp_req_init(&p);
    p.max_bulk = 10;
    assert_int_equal(resp_req_feed(&p, bad, 2, &used, &arg), RESP_EV_ERROR);
    assert_int_equal(used, 1);      /* the '*' was consumed, the bad byte was not */
    assert_string_equal(p.err, "Protocol error: invalid multibulk length");
    assert_int_equal(resp_req_feed(&p, good, sizeof(good) - 1, &used, &arg), RESP_EV_ERROR);
    assert_int_equal(used, 0);
    resp_req_reset(&p);
    assert_int_equal(p.max_bulk, 10);
    assert_int_equal(p.max_args, 1024 * 1024);
    assert_int_equal(p.max_inline, 64 * 1024);
    assert_null(p.err);
    assert_int_equal(resp_req_feed(&p, good, sizeof(good) - 1, &used, &arg), RESP_EV_ARG);
    assert_int_equal(used, sizeof(good) - 1);
    assert_false(resp_req_inline(&p));
    assert_int_equal(resp_req_nargs(&p), 1);
    assert_int_equal(resp_req_feed(&p, good, 0, &used, &arg), RESP_EV_DONE);
    assert_int_equal(used, 0);
    assert_int_equal(resp_req_msglen(&p), 14);
}

/*
 * A pipeline of 1000 commands of several shapes (multibulk with binary values, inline,
 * interleaved empty messages). The expected offsets come from the generator's own
 * bookkeeping, not from the parser. Fed whole, byte by byte and in chunks of assorted sizes.
 */
struct pl_arg {
    uint64_t pos, len;  /* message-relative */
    uint32_t hdr;
};

struct pl_msg {
    uint64_t start, len;
    bool     inl;
    unsigned nargs;
    struct pl_arg args[3];
};

struct pipeline {
    uint8_t      *buf;
    size_t        len, cap;
    struct pl_msg msgs[1000];
    size_t        nmsgs;
};

static void
pl_put(struct pipeline *pl, const void *p, size_t n)
{
    if (pl->len + n > pl->cap) {
        pl->cap = (pl->len + n) * 2;
        pl->buf = realloc(pl->buf, pl->cap);
        assert_non_null(pl->buf);
    }
    memcpy(pl->buf + pl->len, p, n);
    pl->len += n;
}

static void
pl_build(struct pipeline *pl)
{
    char tmp[64];

    memset(pl, 0, sizeof(*pl));
    for (unsigned i = 0; i < 1000; i++) {
        struct pl_msg *m = &pl->msgs[pl->nmsgs++];

        if (i % 7 == 3)
            pl_put(pl, "*0\r\n", 4);            /* skipped, belongs to no message */
        if (i % 11 == 5)
            pl_put(pl, "\r\n", 2);
        m->start = pl->len;
        if (i % 3 == 0) {
            /* inline: "GET key:<i>\r\n" */
            int kl = snprintf(tmp, sizeof(tmp), "key:%u", i);

            m->inl = true;
            m->nargs = 2;
            m->args[0] = (struct pl_arg){ 0, 3, 0 };
            m->args[1] = (struct pl_arg){ 4, (uint64_t)kl, 0 };
            pl_put(pl, "GET ", 4);
            pl_put(pl, tmp, (size_t)kl);
            pl_put(pl, "\r\n", 2);
        } else {
            /* multibulk: SET key:<i> <value of i*7 % 300 bytes, with CR LF and NUL inside> */
            char key[32];
            int kl = snprintf(key, sizeof(key), "key:%u", i);
            size_t vl = (i * 7) % 300;
            int hl;

            m->inl = false;
            m->nargs = 3;
            pl_put(pl, "*3\r\n$3\r\nSET\r\n", 13);
            m->args[0] = (struct pl_arg){ 8, 3, 4 };
            hl = snprintf(tmp, sizeof(tmp), "$%d\r\n", kl);
            pl_put(pl, tmp, (size_t)hl);
            m->args[1] = (struct pl_arg){ pl->len - m->start, (uint64_t)kl, (uint32_t)hl };
            pl_put(pl, key, (size_t)kl);
            pl_put(pl, "\r\n", 2);
            hl = snprintf(tmp, sizeof(tmp), "$%zu\r\n", vl);
            pl_put(pl, tmp, (size_t)hl);
            m->args[2] = (struct pl_arg){ pl->len - m->start, vl, (uint32_t)hl };
            for (size_t k = 0; k < vl; k++) {
                static const char alpha[] = "ab\r\n\0$*x";
                pl_put(pl, &alpha[(i + k) % 8], 1);
            }
            pl_put(pl, "\r\n", 2);
        }
        m->len = pl->len - m->start;
    }
}

/* Feed the pipeline in chunks of sizes taken in turn from sizes[] and check every event. */
static void
pl_run(const struct pipeline *pl, const size_t *sizes, size_t nsizes)
{
    struct resp_req_parser p;
    size_t off = 0, si = 0, msg = 0;
    unsigned argi = 0;
    uint64_t consumed = 0;

    resp_req_init(&p);
    while (off < pl->len || msg < pl->nmsgs) {
        size_t want = sizes[si++ % nsizes];
        size_t n = off + want <= pl->len ? want : pl->len - off;
        uint8_t *chunk = chunk_copy(pl->buf, off, off + n);
        size_t done = 0;

        for (;;) {
            struct resp_arg arg;
            size_t used;
            int ev = resp_req_feed(&p, chunk + done, n - done, &used, &arg);

            done += used;
            consumed += used;
            if (ev == RESP_EV_AGAIN)
                break;
            assert_true(msg < pl->nmsgs);
            const struct pl_msg *m = &pl->msgs[msg];
            if (ev == RESP_EV_ARG) {
                assert_true(argi < m->nargs);
                assert_int_equal(consumed - resp_req_msglen(&p), m->start);
                assert_int_equal(arg.pos, m->args[argi].pos);
                assert_int_equal(arg.len, m->args[argi].len);
                assert_int_equal(arg.hdr, m->args[argi].hdr);
                assert_int_equal(resp_req_inline(&p), m->inl);
                argi++;
                continue;
            }
            assert_int_equal(ev, RESP_EV_DONE);
            assert_int_equal(argi, m->nargs);
            assert_int_equal(resp_req_nargs(&p), m->nargs);
            assert_int_equal(resp_req_msglen(&p), m->len);
            assert_int_equal(consumed - m->len, m->start);
            resp_req_reset(&p);
            msg++;
            argi = 0;
        }
        free(chunk);
        off += n;
        if (n == 0 && msg < pl->nmsgs)
            fail_msg("input ended before message %zu completed", msg);
    }
    assert_int_equal(msg, pl->nmsgs);
    assert_int_equal(consumed, pl->len);
}

static void
test_req_pipeline_1000(void **state)
{
    static struct pipeline pl;
    const size_t whole[] = { SIZE_MAX / 2 };
    const size_t one[] = { 1 };
    const size_t mixed[] = { 7, 1, 4096, 2, 13, 512, 3, 64, 1000, 5 };
    const size_t seg[] = { 16384 };

    (void)state;
    pl_build(&pl);
    pl_run(&pl, whole, 1);
    pl_run(&pl, one, 1);
    pl_run(&pl, mixed, sizeof(mixed) / sizeof(mixed[0]));
    pl_run(&pl, seg, 1);
    free(pl.buf);
}

/* ---------------------------------------------------------- reply cases */

static const struct tcase rsp_cases[] = {
    TC("simple string", "+OK\r\n", "D0+5,+0"),
    TC("error", "-ERR x\r\n", "D0+8,-0"),
    TC("empty simple string", "+\r\n", "D0+3,+0"),
    TC("integer", ":1000\r\n", "D0+7,:1000"),
    TC("negative integer", ":-5\r\n", "D0+5,:-5"),
    TC("zero", ":0\r\n", "D0+4,:0"),
    TC("int64 min", ":-9223372036854775808\r\n", "D0+23,:-9223372036854775808"),
    TC("int64 max", ":9223372036854775807\r\n", "D0+22,:9223372036854775807"),
    TC("bulk", "$5\r\nhello\r\n", "D0+11,$5"),
    TC("bulk with CRLF inside", "$4\r\n\r\n\r\n\r\n", "D0+10,$4"),
    TC("empty bulk", "$0\r\n\r\n", "D0+6,$0"),
    TC("null bulk", "$-1\r\n", "D0+5,$-1"),
    TC("null array", "*-1\r\n", "D0+5,*-1"),
    TC("empty array", "*0\r\n", "D0+4,*0"),
    TC("array", "*2\r\n$3\r\nfoo\r\n:5\r\n", "A4,9,$3 A13,4,:5 D0+17,*2"),
    TC("nested", "*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n$-1\r\n", "A4,12,*2 A16,9,*1 D0+25,*2"),
    TC("null elements", "*3\r\n$-1\r\n*-1\r\n*0\r\n", "A4,5,$-1 A9,5,*-1 A14,4,*0 D0+18,*3"),
    TC("errors inside array", "*2\r\n-ERR a\r\n+OK\r\n", "A4,8,-0 A12,5,+0 D0+17,*2"),
    TC("deep last element", "*2\r\n:1\r\n*1\r\n*1\r\n*1\r\n+x\r\n", "A4,4,:1 A8,16,*1 D0+24,*2"),
    TC("partial array", "*3\r\n:1\r\n$5\r\nab", "A4,4,:1 P14"),
    TC("partial bulk header", "$12", "P3"),
    TC("large declared bulk", "$1000000000000\r\nabc", "P19"),
    TC("large declared array", "*4000000000\r\n:1\r\n", "A13,4,:1 P17"),
    TC("int64 max count", "*9223372036854775807\r\n", "P22"),
    TC("pipeline", "+OK\r\n:1\r\n*1\r\n$1\r\na\r\n", "D0+5,+0 D5+4,:1 A4,7,$1 D9+11,*1"),

    /* RESP3, bytes as sent by redis-server 7.0.15 after HELLO 3 (DEBUG PROTOCOL ...) */
    TC("resp3 hello map",
       "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
       "$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
       "$7\r\nmodules\r\n*0\r\n",
       "A4,12,$6 A16,11,$5 A27,13,$7 A40,12,$6 A52,11,$5 A63,4,:3 A67,8,$2 A75,4,:3 "
       "A79,10,$4 A89,17,$10 A106,10,$4 A116,12,$6 A128,13,$7 A141,4,*0 D0+145,%7"),
    TC("resp3 attribute then bulk",
       "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
       "$39\r\nSome real reply following the attribute\r\n",
       "D0+93,$39"),
    TC("resp3 bignum", "(1234567999999999999999999999999999999\r\n", "D0+40,(0"),
    TC("resp3 verbatim", "=29\r\ntxt:This is a verbatim\nstring\r\n", "D0+36,=29"),
    TC("resp3 map", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
       "A4,4,:0 A8,4,#0 A12,4,:1 A16,4,#0 A20,4,:2 A24,4,#0 D0+28,%3"),
    TC("resp3 set", "~3\r\n:0\r\n:1\r\n:2\r\n", "A4,4,:0 A8,4,:1 A12,4,:2 D0+16,~3"),
    TC("resp3 double", ",3.141\r\n", "D0+8,,0"),
    TC("resp3 null", "_\r\n", "D0+3,_0"),
    TC("resp3 booleans", "#t\r\n#f\r\n", "D0+4,#0 D4+4,#0"),
    TC("resp3 push then reply",
       ">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n",
       "A4,23,$16 A27,5,:42 D0+32,>2 D32+47,$40"),
    TC("resp3 invalidate push", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nx\r\n",
       "A4,17,$10 A21,11,*1 D0+32,>2"),
    TC("resp3 blob error", "!21\r\nSYNTAX invalid syntax\r\n", "D0+28,!21"),
    TC("attribute inside array", "*2\r\n|1\r\n+a\r\n+b\r\n:5\r\n:6\r\n",
       "A4,16,:5 A20,4,:6 D0+24,*2"),
    TC("empty attribute", "|0\r\n+OK\r\n", "D0+9,+0"),
    TC("map with nested value", "%1\r\n+k\r\n*2\r\n:1\r\n:2\r\n", "A4,4,+0 A8,12,*2 D0+20,%1"),
    TCL("depth at limit", "*1\r\n*1\r\n*1\r\n:1\r\n", ((struct limits){ 0, 0, 0, 3 }),
        "A4,12,*1 D0+16,*1"),

    /* errors */
    TCL("depth over limit", "*1\r\n*1\r\n*1\r\n:1\r\n", ((struct limits){ 0, 0, 0, 2 }),
        "E:Protocol error: reply nested too deeply"),
    TC("unknown type", "?x\r\n", "E:Protocol error: invalid reply type"),
    TC("bad type inside array", "*1\r\nOK\r\n", "E:Protocol error: invalid reply type"),
    TC("bulk below -1", "$-2\r\n", "E:Protocol error: invalid bulk length"),
    TC("streamed bulk", "$?\r\n;4\r\nHell\r\n;0\r\n", "E:Protocol error: invalid bulk length"),
    TC("blob error null", "!-1\r\n", "E:Protocol error: invalid bulk length"),
    TC("array below -1", "*-2\r\n", "E:Protocol error: invalid multibulk length"),
    TC("null set", "~-1\r\n", "E:Protocol error: invalid multibulk length"),
    TC("map too large", "%4611686018427387904\r\n", "E:Protocol error: invalid multibulk length"),
    TC("integer letters", ":abc\r\n", "E:Protocol error: invalid integer"),
    TC("integer empty", ":\r\n", "E:Protocol error: invalid integer"),
    TC("integer only minus", ":-\r\n", "E:Protocol error: invalid integer"),
    TC("integer overflow", ":9223372036854775808\r\n", "E:Protocol error: invalid integer"),
    TC("line with bare LF", "+OK\n", "E:Protocol error: expected CRLF"),
    TC("number CR without LF", ":1\rx", "E:Protocol error: expected CRLF"),
    TC("bulk too long", "$3\r\nfoobar\r\n", "E:Protocol error: expected CRLF"),
    TC("bulk bad LF", "*1\r\n$1\r\na\rx", "E:Protocol error: expected CRLF"),
    TC("error after a reply", "+OK\r\n*1\r\n:x", "D0+5,+0 E:Protocol error: invalid integer"),
};

static void
test_rsp_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rsp_cases) / sizeof(rsp_cases[0]); i++) {
        const struct tcase *t = &rsp_cases[i];

        check_all_splits(run_rsp, t->name, (const uint8_t *)t->in, t->len, &t->lim, t->expect);
    }
}

/* Nesting up to the default 128 levels is accepted without recursion; 129 is refused. */
static void
test_rsp_default_depth(void **state)
{
    static struct logbuf lg;
    struct limits lim = { 0, 0, 0, 0 };
    uint8_t in[129 * 4 + 4];
    size_t n;
    size_t whole[2];
    struct cuts cuts = { whole, 2 };
    char expect[64];

    (void)state;
    for (unsigned depth = 128; depth <= 129; depth++) {
        n = 0;
        for (unsigned d = 0; d < depth; d++) {
            memcpy(in + n, "*1\r\n", 4);
            n += 4;
        }
        memcpy(in + n, ":7\r\n", 4);
        n += 4;
        whole[0] = 0;
        whole[1] = n;
        run_rsp(in, n, &cuts, &lim, &lg);
        if (depth == 128) {
            snprintf(expect, sizeof(expect), "A4,%zu,*1 D0+%zu,*1", n - 4, n);
            assert_string_equal(lg.s, expect);
        } else {
            assert_string_equal(lg.s, "E:Protocol error: reply nested too deeply");
        }
    }
}

/* A reply of 100000 elements streams out one ARG per element, in order, at their offsets. */
static void
test_rsp_many_elements(void **state)
{
    const unsigned count = 100000;
    size_t cap = 16 + (size_t)count * 16, n = 0;
    uint8_t *in = malloc(cap);
    struct resp_rsp_parser p;
    size_t off = 0, used;
    struct resp_elem el;
    unsigned seen = 0;
    uint64_t expect_pos;
    int ev;

    (void)state;
    assert_non_null(in);
    n += (size_t)snprintf((char *)in, cap, "*%u\r\n", count);
    expect_pos = n;
    for (unsigned i = 0; i < count; i++)
        n += (size_t)snprintf((char *)in + n, cap - n, ":%u\r\n", i);
    resp_rsp_init(&p);
    while ((ev = resp_rsp_feed(&p, in + off, n - off, &used, &el)) == RESP_EV_ARG) {
        char tmp[32];
        int tl = snprintf(tmp, sizeof(tmp), ":%u\r\n", seen);

        off += used;
        assert_int_equal(el.pos, expect_pos);
        assert_int_equal(el.len, tl);
        assert_int_equal(el.ival, seen);
        expect_pos += (uint64_t)tl;
        seen++;
    }
    assert_int_equal(ev, RESP_EV_DONE);
    assert_int_equal(seen, count);
    assert_int_equal(resp_rsp_msglen(&p), n);
    assert_int_equal(p.ival, count);
    free(in);
}

/* resp_parse_int64 follows Redis's integer grammar (each rejection below was checked against
 * redis-server 7.0: EVAL "return 1" <numkeys> answers "value is not an integer"). */
static void
test_parse_int64(void **state)
{
    static const struct {
        const char *s;
        bool        ok;
        int64_t     v;
    } cases[] = {
        { "0", true, 0 },
        { "1", true, 1 },
        { "-1", true, -1 },
        { "42", true, 42 },
        { "9223372036854775807", true, INT64_MAX },
        { "-9223372036854775808", true, INT64_MIN },
        { "9223372036854775808", false, 0 },
        { "-9223372036854775809", false, 0 },
        { "99999999999999999999999", false, 0 },
        { "", false, 0 },
        { "-", false, 0 },
        { "00", false, 0 },
        { "01", false, 0 },
        { "-0", false, 0 },
        { "+1", false, 0 },
        { " 1", false, 0 },
        { "1 ", false, 0 },
        { "1a", false, 0 },
        { "x", false, 0 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 12345;
        bool ok = resp_parse_int64((const uint8_t *)cases[i].s, strlen(cases[i].s), &v);

        if (ok != cases[i].ok)
            print_error("'%s'\n", cases[i].s);
        assert_int_equal(ok, cases[i].ok);
        if (ok)
            assert_int_equal(v, cases[i].v);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_cases),
        cmocka_unit_test(test_req_inline_default_limit),
        cmocka_unit_test(test_req_error_sticky_and_reset),
        cmocka_unit_test(test_req_pipeline_1000),
        cmocka_unit_test(test_rsp_cases),
        cmocka_unit_test(test_rsp_default_depth),
        cmocka_unit_test(test_rsp_many_elements),
        cmocka_unit_test(test_parse_int64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
