/* tests/unit/test_mc.c: the memcached request and reply tokenizers, fed whole, split at every byte, and byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/mc.h"

/*
 * Every case is a byte string and the log of events it must produce. The log is built
 * by a driver that feeds the input in chunks, each copied into a malloc'd buffer of
 * exactly its size (so AddressSanitizer catches any read past what a call was given),
 * resets the tokenizer after each DONE and each recoverable ERROR, and stops after a
 * fatal one. Each case is run whole, split in two at every byte, and one byte at a time:
 * the three logs must equal the expected one.
 *
 * Expected logs were written by hand from the protocol. The replies memcached gives to
 * bad requests (which the tokenizer's `err` copies) and every reply used as reply input
 * below were captured from a real memcached 1.6.18 started for the purpose on
 * 127.0.0.1:42700-42702 (`memcached -u nobody -p 4270x -l 127.0.0.1 -U 0 -m 64`), by
 * sending the request shown next to each case over a plain TCP socket.
 *
 * Request log:  k<pos>:<key>            a KEY (key text when <= 16 bytes, else +<len>)
 *               done <cmd>[ nr][ q][ b][ v=<vlen>] len=<msglen>;
 *               error(<err>) rec|fatal[ nr] len=<msglen>;
 *               partial <msglen>[ swallowing]      input ended inside a request
 * Reply log:    item <pos>+<len> k<pos>:<key>
 *               done <kind> <word>[ err][ va=<data_pos>+<vlen>] end=<end_pos> len=<msglen>;
 *               error(<err>);  partial <msglen>
 */

#define LOG_MAX 8192

struct logbuf {
    char s[LOG_MAX];
    size_t n;
};

static void
logf_(struct logbuf *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->s + l->n, sizeof(l->s) - l->n, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof(l->s) - l->n);
    l->n += (size_t)k;
}

static void
log_text(struct logbuf *l, const uint8_t *msg, uint64_t pos, uint64_t len)
{
    if (len > 16) {
        logf_(l, "+%llu", (unsigned long long)len);
        return;
    }
    logf_(l, ":");
    for (uint64_t i = 0; i < len; i++) {
        uint8_t c = msg[pos + i];
        if (c >= 33 && c < 127)
            logf_(l, "%c", c);
        else
            logf_(l, "\\x%02x", c);
    }
}

static const char *const kind_names[] = { "none", "line", "values", "va", "stats" };
static const char *const word_names[MC_RW_COUNT] = {
    "-", "VALUE", "END", "STAT", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED",
    "TOUCHED", "OK", "NUMBER", "VERSION", "VA", "HD", "NS", "EX", "NF", "EN", "MN", "ME",
    "ERROR", "CLIENT_ERROR", "SERVER_ERROR",
};

/* Limits a case may change; 0 keeps the default. */
struct limits {
    uint64_t max_value;
    uint32_t max_line;
    uint64_t max_get_line;
};

/* ---- request driver -------------------------------------------------------------- */

struct req_run {
    struct mc_req_parser p;
    struct logbuf log;
    const uint8_t *in;      /* the whole input, to print keys */
    uint64_t mstart;        /* input offset of the current message */
    bool stopped;
};

static void
req_run_init(struct req_run *r, const uint8_t *in, const struct limits *lim)
{
    memset(r, 0, sizeof(*r));
    mc_req_init(&r->p);
    if (lim != NULL && lim->max_value)
        r->p.max_value = lim->max_value;
    if (lim != NULL && lim->max_line)
        r->p.max_line = lim->max_line;
    if (lim != NULL && lim->max_get_line)
        r->p.max_get_line = lim->max_get_line;
    r->in = in;
}

/* Feed one chunk (copied to an exact-size heap buffer) until it is used up. */
static void
req_run_chunk(struct req_run *r, const uint8_t *chunk, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, chunk, n);
    size_t at = 0;
    int guard = 0;

    /* call until AGAIN: a DONE may follow a KEY without consuming a byte */
    while (!r->stopped) {
        size_t used = (size_t)-1;
        struct mc_tok key = { 0, 0 };
        int ev = mc_req_feed(&r->p, b + at, n - at, &used, &key);

        assert_true(used <= n - at);
        at += used;
        assert_true(++guard < 100000);
        if (ev == MC_EV_AGAIN) {
            assert_int_equal(at, n);
            break;
        }
        if (ev == MC_EV_KEY) {
            assert_true(key.len > 0);
            assert_true(key.pos + key.len <= mc_req_msglen(&r->p));
            logf_(&r->log, "k%llu", (unsigned long long)key.pos);
            log_text(&r->log, r->in + r->mstart, key.pos, key.len);
            logf_(&r->log, " ");
            continue;
        }
        if (ev == MC_EV_DONE) {
            const struct mc_req_parser *p = &r->p;
            logf_(&r->log, "done %s%s%s%s", mc_cmd_name(p->cmd), p->noreply ? " nr" : "",
                  p->quiet ? " q" : "", p->base64 ? " b" : "");
            if (p->cmd == MC_SET || p->cmd == MC_ADD || p->cmd == MC_REPLACE || p->cmd == MC_APPEND ||
                p->cmd == MC_PREPEND || p->cmd == MC_CAS || p->cmd == MC_MS)
                logf_(&r->log, " v=%llu", (unsigned long long)p->vlen);
            logf_(&r->log, " len=%llu; ", (unsigned long long)mc_req_msglen(p));
            assert_true(p->line_len > 0 && p->line_len <= mc_req_msglen(p));
            /* a finished parser stays finished */
            size_t u2 = 1;
            struct mc_tok k2;
            assert_int_equal(mc_req_feed(&r->p, b + at, n - at, &u2, &k2), MC_EV_DONE);
            assert_int_equal(u2, 0);
        } else {
            assert_int_equal(ev, MC_EV_ERROR);
            assert_non_null(r->p.err);
            logf_(&r->log, "error(%s) %s%s len=%llu; ", r->p.err, r->p.recoverable ? "rec" : "fatal",
                  r->p.noreply ? " nr" : "", (unsigned long long)mc_req_msglen(&r->p));
            size_t u2 = 1;
            struct mc_tok k2;
            assert_int_equal(mc_req_feed(&r->p, b + at, n - at, &u2, &k2), MC_EV_ERROR);
            assert_int_equal(u2, 0);
            if (!r->p.recoverable) {
                r->stopped = true;
                break;
            }
        }
        r->mstart += mc_req_msglen(&r->p);
        mc_req_reset(&r->p);
    }
    free(b);
}

static void
req_run_end(struct req_run *r)
{
    if (!r->stopped && mc_req_msglen(&r->p) > 0)
        logf_(&r->log, "partial %llu%s", (unsigned long long)mc_req_msglen(&r->p),
              r->p.swallowing ? " swallowing" : "");
}

/* Strip the trailing space the logs end with, so the tables can omit it. */
static void
log_trim(struct logbuf *l)
{
    while (l->n > 0 && l->s[l->n - 1] == ' ')
        l->s[--l->n] = '\0';
}

enum { MODE_WHOLE, MODE_SPLIT, MODE_BYTES };

/* Run input in[0..len) with the chunk boundaries of a mode (cut: split point). */
static void
req_log(const uint8_t *in, size_t len, const struct limits *lim, int mode, size_t cut,
        struct logbuf *out)
{
    struct req_run *r = malloc(sizeof(*r));
    assert_non_null(r);
    req_run_init(r, in, lim);
    if (mode == MODE_WHOLE) {
        req_run_chunk(r, in, len);
    } else if (mode == MODE_SPLIT) {
        req_run_chunk(r, in, cut);
        req_run_chunk(r, in + cut, len - cut);
    } else {
        for (size_t i = 0; i < len; i++)
            req_run_chunk(r, in + i, 1);
    }
    req_run_end(r);
    log_trim(&r->log);
    *out = r->log;
    free(r);
}

struct req_case {
    const char *name;
    const char *in;
    size_t len;              /* 0: strlen(in) */
    const char *expect;
    struct limits lim;
};

static void
check_req_case(const struct req_case *c)
{
    size_t len = c->len ? c->len : strlen(c->in);
    struct logbuf *got = malloc(sizeof(*got));
    assert_non_null(got);

    req_log((const uint8_t *)c->in, len, &c->lim, MODE_WHOLE, 0, got);
    if (strcmp(got->s, c->expect) != 0)
        fail_msg("request case '%s' (whole)\n  expected: %s\n  got:      %s", c->name, c->expect, got->s);
    for (size_t cut = 0; cut <= len; cut++) {
        req_log((const uint8_t *)c->in, len, &c->lim, MODE_SPLIT, cut, got);
        if (strcmp(got->s, c->expect) != 0)
            fail_msg("request case '%s' (split at %zu)\n  expected: %s\n  got:      %s", c->name, cut,
                     c->expect, got->s);
    }
    req_log((const uint8_t *)c->in, len, &c->lim, MODE_BYTES, 0, got);
    if (strcmp(got->s, c->expect) != 0)
        fail_msg("request case '%s' (byte by byte)\n  expected: %s\n  got:      %s", c->name, c->expect,
                 got->s);
    free(got);
}

#define K250 \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define K251 K250 "k"

#define FMT "CLIENT_ERROR bad command line format"

/* Well-formed requests of every command. */
static const struct req_case req_ok[] = {
    { "get", "get foo\r\n", 0, "k4:foo done get len=9;", {0} },
    { "get 3 keys", "get foo bar baz\r\n", 0, "k4:foo k8:bar k12:baz done get len=17;", {0} },
    { "gets", "gets foo bar\r\n", 0, "k5:foo k9:bar done gets len=14;", {0} },
    { "get spaces", "get  foo   bar  \r\n", 0, "k5:foo k11:bar done get len=18;", {0} },
    { "get leading space", " get foo\r\n", 0, "k5:foo done get len=10;", {0} },
    { "get bare LF", "get foo\n", 0, "k4:foo done get len=8;", {0} },
    { "get key 250", "get " K250 "\r\n", 0, "k4+250 done get len=256;", {0} },
    { "get utf8 key", "get caf\xc3\xa9 ~!\r\n", 0, "k4:caf\\xc3\\xa9 k10:~! done get len=14;", {0} },
    { "gat", "gat 100 foo bar\r\n", 0, "k8:foo k12:bar done gat len=17;", {0} },
    { "gats negative exptime", "gats -1 foo\r\n", 0, "k8:foo done gats len=13;", {0} },
    { "set", "set foo 5 0 3\r\nbar\r\n", 0, "k4:foo done set v=3 len=20;", {0} },
    { "set noreply", "set foo 0 0 3 noreply\r\nbar\r\n", 0, "k4:foo done set nr v=3 len=28;", {0} },
    /* memcached 1.6.18: "set foo 0 0 3 junk" -> STORED, "set foo 0 0 3 1" -> STORED */
    { "set ignored 6th token", "set foo 0 0 3 junk\r\nbar\r\n", 0, "k4:foo done set v=3 len=25;", {0} },
    { "set ignored number", "set foo 0 0 3 1\r\nbar\r\n", 0, "k4:foo done set v=3 len=22;", {0} },
    { "set key 250", "set " K250 " 0 0 1\r\nx\r\n", 0, "k4+250 done set v=1 len=265;", {0} },
    { "set data with CRLFs", "set k 0 0 4\r\n\r\n\r\n\r\n", 0, "k4:k done set v=4 len=19;", {0} },
    { "set empty value", "set k 0 0 0\r\n\r\n", 0, "k4:k done set v=0 len=15;", {0} },
    { "set bare LF line", "set k 0 0 3\nbar\r\n", 0, "k4:k done set v=3 len=17;", {0} },
    /* memcached 1.6.18 stores "set f 0 0 01", "set f 0 0 +1", "set f 0 -1 1" */
    { "set number forms", "set k +1 -1 01\r\nx\r\n", 0, "k4:k done set v=1 len=19;", {0} },
    { "set flags max", "set k 4294967295 0 1\r\nx\r\n", 0, "k4:k done set v=1 len=25;", {0} },
    { "set trailing space", "set k 0 0 1 \r\nx\r\n", 0, "k4:k done set v=1 len=17;", {0} },
    { "add", "add k 1 2 1\r\nx\r\n", 0, "k4:k done add v=1 len=16;", {0} },
    { "replace", "replace k 0 0 0\r\n\r\n", 0, "k8:k done replace v=0 len=19;", {0} },
    { "append", "append k 0 0 2\r\nab\r\n", 0, "k7:k done append v=2 len=20;", {0} },
    { "prepend", "prepend k 0 0 2\r\nab\r\n", 0, "k8:k done prepend v=2 len=21;", {0} },
    { "cas", "cas foo 0 0 3 77\r\nbar\r\n", 0, "k4:foo done cas v=3 len=23;", {0} },
    { "cas noreply", "cas foo 0 0 3 77 noreply\r\nbar\r\n", 0, "k4:foo done cas nr v=3 len=31;", {0} },
    { "incr", "incr n 5\r\n", 0, "k5:n done incr len=10;", {0} },
    { "decr noreply", "decr n 5 noreply\r\n", 0, "k5:n done decr nr len=18;", {0} },
    /* memcached 1.6.18: "incr n 1 junk" -> the number */
    { "incr ignored token", "incr n 1 junk\r\n", 0, "k5:n done incr len=15;", {0} },
    { "delete", "delete foo\r\n", 0, "k7:foo done delete len=12;", {0} },
    { "delete 0", "delete foo 0\r\n", 0, "k7:foo done delete len=14;", {0} },
    { "delete noreply", "delete foo noreply\r\n", 0, "k7:foo done delete nr len=20;", {0} },
    { "delete 0 noreply", "delete foo 0 noreply\r\n", 0, "k7:foo done delete nr len=22;", {0} },
    { "touch", "touch foo 10\r\n", 0, "k6:foo done touch len=14;", {0} },
    { "touch noreply", "touch foo 10 noreply\r\n", 0, "k6:foo done touch nr len=22;", {0} },
    { "version", "version\r\n", 0, "done version len=9;", {0} },
    { "version arg", "version x\r\n", 0, "done version len=11;", {0} },
    { "quit", "quit\r\n", 0, "done quit len=6;", {0} },
    { "mn", "mn\r\n", 0, "done mn len=4;", {0} },
    { "verbosity", "verbosity 1\r\n", 0, "done verbosity len=13;", {0} },
    { "verbosity noreply", "verbosity 1 noreply\r\n", 0, "done verbosity nr len=21;", {0} },
    /* memcached 1.6.18: OK to each of these (a level of 2^32 too; a third token is ignored) */
    { "verbosity forms", "verbosity +1\r\nverbosity 4294967296\r\nverbosity 1 2\r\n", 0,
      "done verbosity len=14; done verbosity len=22; done verbosity len=15;", {0} },
    { "flush_all", "flush_all\r\n", 0, "done flush_all len=11;", {0} },
    { "flush_all noreply", "flush_all noreply\r\n", 0, "done flush_all nr len=19;", {0} },
    { "flush_all delay noreply", "flush_all 10 noreply\r\n", 0, "done flush_all nr len=22;", {0} },
    /* memcached 1.6.18: OK to each (the delay is signed 64-bit; a third token is ignored) */
    { "flush_all delays", "flush_all -1\r\nflush_all +5\r\nflush_all 9223372036854775807\r\nflush_all 10 20\r\n", 0,
      "done flush_all len=14; done flush_all len=14; done flush_all len=31; done flush_all len=17;", {0} },
    { "stats noreply is not noreply", "stats noreply\r\n", 0, "done stats len=15;", {0} },
    { "stats", "stats\r\n", 0, "done stats len=7;", {0} },
    { "stats slabs", "stats slabs\r\n", 0, "done stats len=13;", {0} },
    /* 0x80 is an ordinary byte past a request's first one */
    { "0x80 inside a key", "get \x80" "a\r\n", 0, "k4:\\x80a done get len=8;", {0} },
    { "mg flags", "mg foo v f t c k s\r\n", 0, "k3:foo done mg len=20;", {0} },
    { "mg quiet", "mg foo v q\r\n", 0, "k3:foo done mg q len=12;", {0} },
    { "mg base64", "mg Zm9v b v\r\n", 0, "k3:Zm9v done mg b len=13;", {0} },
    /* memcached 1.6.18 reads a flag token by its first byte: "mg nokey qx" + mn -> only MN */
    { "mg qq is q", "mg foo qq\r\n", 0, "k3:foo done mg q len=11;", {0} },
    { "mg Q is not q", "mg foo Q Ob\r\n", 0, "k3:foo done mg len=13;", {0} },
    { "mg no flags", "mg foo\r\n", 0, "k3:foo done mg len=8;", {0} },
    { "ms", "ms foo 3 T0 F5\r\nbar\r\n", 0, "k3:foo done ms v=3 len=21;", {0} },
    { "ms quiet", "ms foo 3 q\r\nbar\r\n", 0, "k3:foo done ms q v=3 len=17;", {0} },
    { "ms no flags", "ms foo 3\r\nbar\r\n", 0, "k3:foo done ms v=3 len=15;", {0} },
    { "md quiet", "md foo q\r\n", 0, "k3:foo done md q len=10;", {0} },
    { "ma flags", "ma n MI D5 v N0 J13 t\r\n", 0, "k3:n done ma len=23;", {0} },
    { "me", "me foo\r\n", 0, "k3:foo done me len=8;", {0} },
    { "pipeline", "get a\r\nset b 0 0 1\r\nx\r\ndelete c\r\nmn\r\nmg d v q\r\n", 0,
      "k4:a done get len=7; k4:b done set v=1 len=16; k7:c done delete len=10; done mn len=4; "
      "k3:d done mg q len=10;", {0} },
    { "pipeline partial", "get a\r\nget b", 0, "k4:a done get len=7; partial 5", {0} },
    { "partial key", "get abc", 0, "partial 7", {0} },
    { "partial data", "set k 0 0 3\r\nba", 0, "k4:k partial 15", {0} },
};

/* Bad requests: memcached 1.6.18's reply to each (captured) is the expected err, unless
 * the comment says keymux differs. */
static const struct req_case req_bad[] = {
    { "unknown", "bogus x\r\n", 0, "error(ERROR) rec len=9;", {0} },
    { "empty line", "\r\n", 0, "error(ERROR) rec len=2;", {0} },
    { "empty bare LF", "\n", 0, "error(ERROR) rec len=1;", {0} },
    { "spaces only", "   \r\n", 0, "error(ERROR) rec len=5;", {0} },
    { "upper case", "GET foo\r\n", 0, "error(ERROR) rec len=9;", {0} },
    { "long word", "flush_all_of_it\r\n", 0, "error(ERROR) rec len=17;", {0} },
    { "get no key", "get\r\n", 0, "error(ERROR) rec len=5;", {0} },
    { "gets no key", "gets \r\n", 0, "error(ERROR) rec len=7;", {0} },
    { "get key 251", "get " K251 "\r\n", 0, "error(" FMT ") rec len=257;", {0} },
    { "get good then long key", "get foo " K251 " bar\r\n", 0, "k4:foo error(" FMT ") rec len=265;", {0} },
    /* keymux differs: memcached 1.6.18 takes control bytes inside keys ("get a\x01b" -> END) */
    { "get control byte", "get a\x01" "b\r\n", 0, "error(" FMT ") rec len=9;", {0} },
    { "get tab", "get a\tb\r\n", 0, "error(" FMT ") rec len=9;", {0} },
    { "get DEL byte", "get a\x7f\r\n", 0, "error(" FMT ") rec len=8;", {0} },
    { "get stray CR at end", "get foo\r\r\n", 0, "error(" FMT ") rec len=10;", {0} },
    { "get stray CR inside", "get a\rb c\r\n", 0, "error(" FMT ") rec len=11;", {0} },
    { "get stray CR before space", "get a\r c\r\n", 0, "error(" FMT ") rec len=10;", {0} },
    { "gat no args", "gat\r\n", 0, "error(ERROR) rec len=5;", {0} },
    /* keymux differs: memcached answers "gat 10" with END */
    { "gat no key", "gat 10\r\n", 0, "error(ERROR) rec len=8;", {0} },
    { "gat bad exptime", "gat foo\r\n", 0, "error(CLIENT_ERROR invalid exptime argument) rec len=9;", {0} },
    { "gat bad exptime 2", "gat x foo\r\n", 0, "error(CLIENT_ERROR invalid exptime argument) rec len=11;", {0} },
    { "gats long key", "gats 0 " K251 "\r\n", 0, "error(" FMT ") rec len=260;", {0} },
    { "set negative length", "set foo 0 0 -1\r\n", 0, "k4:foo error(" FMT ") rec len=16;", {0} },
    /* memcached does not skip the block of a bad line: "bar" is read as a command */
    { "set bad flags", "set foo x 0 3\r\nbar\r\n", 0,
      "k4:foo error(" FMT ") rec len=15; error(ERROR) rec len=5;", {0} },
    { "set bad flags noreply", "set foo x 0 3 noreply\r\nbar\r\n", 0,
      "k4:foo error(" FMT ") rec nr len=23; error(ERROR) rec len=5;", {0} },
    { "set negative flags", "set f -1 0 1\r\n", 0, "k4:f error(" FMT ") rec len=14;", {0} },
    /* keymux differs: memcached 1.6.18 stores flags 4294967296 (truncated) */
    { "set flags 2^32", "set f 4294967296 0 1\r\n", 0, "k4:f error(" FMT ") rec len=22;", {0} },
    { "set bad exptime", "set f 0 x 1\r\n", 0, "k4:f error(" FMT ") rec len=13;", {0} },
    { "set sign only", "set f 0 0 +\r\n", 0, "k4:f error(" FMT ") rec len=13;", {0} },
    { "set length over INT_MAX-2", "set f 0 0 2147483646\r\n", 0, "k4:f error(" FMT ") rec len=22;", {0} },
    { "set length overflow", "set f 0 0 99999999999999999999\r\n", 0, "k4:f error(" FMT ") rec len=32;", {0} },
    { "set missing length", "set foo 0 0\r\n", 0, "k4:foo error(ERROR) rec len=13;", {0} },
    { "set no args", "set\r\n", 0, "error(ERROR) rec len=5;", {0} },
    /* too many tokens: memcached's dispatcher says ERROR, even with noreply */
    { "set too many", "set foo 0 0 3 noreply junk\r\nbar\r\n", 0,
      "k4:foo error(ERROR) rec len=28; error(ERROR) rec len=5;", {0} },
    { "set too many beats bad field", "set foo x 0 3 noreply junk\r\n", 0, "k4:foo error(ERROR) rec len=28;", {0} },
    { "set long key", "set " K251 " 0 0 1\r\nx\r\n", 0,
      "error(" FMT ") rec len=263; error(ERROR) rec len=3;", {0} },
    { "cas missing unique", "cas foo 0 0 3\r\nbar\r\n", 0,
      "k4:foo error(ERROR) rec len=15; error(ERROR) rec len=5;", {0} },
    { "cas bad unique", "cas foo 0 0 3 x\r\n", 0, "k4:foo error(" FMT ") rec len=17;", {0} },
    { "cas negative unique", "cas foo 0 0 3 -1\r\n", 0, "k4:foo error(" FMT ") rec len=18;", {0} },
    { "cas too many", "cas foo 0 0 1 1 noreply x\r\n", 0, "k4:foo error(ERROR) rec len=27;", {0} },
    { "incr no delta", "incr n\r\n", 0, "k5:n error(ERROR) rec len=8;", {0} },
    { "incr bad delta", "incr n x\r\n", 0, "k5:n error(CLIENT_ERROR invalid numeric delta argument) rec len=10;", {0} },
    { "incr negative delta", "incr n -1\r\n", 0, "k5:n error(CLIENT_ERROR invalid numeric delta argument) rec len=11;", {0} },
    { "incr bad delta noreply", "incr n x noreply\r\n", 0,
      "k5:n error(CLIENT_ERROR invalid numeric delta argument) rec nr len=18;", {0} },
    { "incr too many", "incr n 1 noreply junk\r\n", 0, "k5:n error(ERROR) rec len=23;", {0} },
    { "decr too many", "decr n 1 x y\r\n", 0, "k5:n error(ERROR) rec len=14;", {0} },
    { "incr no key", "incr\r\n", 0, "error(ERROR) rec len=6;", {0} },
    { "delete hold time", "delete n 1\r\n", 0,
      "k7:n error(CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]) rec len=12;", {0} },
    { "delete junk", "delete x junk\r\n", 0,
      "k7:x error(CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]) rec len=15;", {0} },
    { "delete noreply 0", "delete foo noreply 0\r\n", 0,
      "k7:foo error(CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]) rec len=22;", {0} },
    { "delete 1 noreply", "delete foo 1 noreply\r\n", 0,
      "k7:foo error(CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]) rec nr len=22;", {0} },
    { "delete too many", "delete foo 0 noreply x\r\n", 0, "k7:foo error(ERROR) rec len=24;", {0} },
    { "delete no key", "delete\r\n", 0, "error(ERROR) rec len=8;", {0} },
    { "delete long key", "delete " K251 "\r\n", 0, "error(" FMT ") rec len=260;", {0} },
    { "touch no exptime", "touch foo\r\n", 0, "k6:foo error(ERROR) rec len=11;", {0} },
    { "touch bad exptime", "touch foo x\r\n", 0, "k6:foo error(CLIENT_ERROR invalid exptime argument) rec len=13;", {0} },
    { "touch too many", "touch foo 1 x y\r\n", 0, "k6:foo error(ERROR) rec len=17;", {0} },
    { "mg no key", "mg\r\n", 0, "error(ERROR) rec len=4;", {0} },
    { "md no key", "md\r\n", 0, "error(ERROR) rec len=4;", {0} },
    { "ma no key", "ma\r\n", 0, "error(ERROR) rec len=4;", {0} },
    { "ms no key", "ms\r\n", 0, "error(ERROR) rec len=4;", {0} },
    { "me no key", "me\r\n", 0, "error(" FMT ") rec len=4;", {0} },
    { "mg long key", "mg " K251 " v\r\n", 0, "error(" FMT ") rec len=258;", {0} },
    { "ms no length", "ms foo\r\n", 0, "k3:foo error(" FMT ") rec len=8;", {0} },
    { "ms bad length", "ms foo x\r\nbar\r\n", 0, "k3:foo error(" FMT ") rec len=10; error(ERROR) rec len=5;", {0} },
    { "ms negative length", "ms foo -1\r\n", 0, "k3:foo error(" FMT ") rec len=11;", {0} },
    /* memcached 1.6.18's replies to each (captured) */
    { "verbosity alone", "verbosity\r\n", 0, "error(ERROR) rec len=11;", {0} },
    { "verbosity bad level", "verbosity x\r\n", 0, "error(" FMT ") rec len=13;", {0} },
    { "verbosity negative", "verbosity -1\r\n", 0, "error(" FMT ") rec len=14;", {0} },
    { "verbosity level overflow", "verbosity 99999999999999999999\r\n", 0, "error(" FMT ") rec len=32;", {0} },
    /* silent, as from memcached (memccapable checks it) */
    { "verbosity noreply alone", "verbosity noreply\r\n", 0, "error(" FMT ") rec nr len=19;", {0} },
    { "verbosity bad level noreply", "verbosity x noreply\r\n", 0, "error(" FMT ") rec nr len=21;", {0} },
    { "verbosity too many", "verbosity 1 2 3\r\n", 0, "error(ERROR) rec len=17;", {0} },
    { "verbosity too many noreply", "verbosity 1 2 noreply\r\n", 0, "error(ERROR) rec len=23;", {0} },
    { "flush_all bad delay", "flush_all x\r\n", 0, "error(CLIENT_ERROR invalid exptime argument) rec len=13;", {0} },
    { "flush_all bad delay noreply", "flush_all 1x noreply\r\n", 0,
      "error(CLIENT_ERROR invalid exptime argument) rec nr len=22;", {0} },
    { "flush_all noreply not last", "flush_all noreply 10\r\n", 0,
      "error(CLIENT_ERROR invalid exptime argument) rec len=22;", {0} },
    { "flush_all delay overflow", "flush_all 99999999999999999999\r\n", 0,
      "error(CLIENT_ERROR invalid exptime argument) rec len=32;", {0} },
    { "flush_all too many", "flush_all 1 2 3\r\n", 0, "error(ERROR) rec len=17;", {0} },
    { "flush_all too many noreply", "flush_all 0 noreply x\r\n", 0, "error(ERROR) rec len=23;", {0} },
    /* a binary-protocol request: fatal at its first byte, nothing consumed, no reply owed */
    { "binary", "\x80\x01\x00\x03", 4, "error(binary protocol not supported) fatal len=0;", {0} },
    { "binary after a request", "get a\r\n\x80\x00", 9,
      "k4:a done get len=7; error(binary protocol not supported) fatal len=0;", {0} },
    { "binary after two requests", "get a\r\nmn\r\n\x80", 12,
      "k4:a done get len=7; done mn len=4; error(binary protocol not supported) fatal len=0;", {0} },
    { "binary after leading space", " \x80\r\n", 0, "error(ERROR) rec len=4;", {0} },
    /* framing lost: not recoverable; the offending byte is not consumed */
    { "bad data chunk", "set foo 0 0 3\r\nbarx\r\n", 0, "k4:foo error(CLIENT_ERROR bad data chunk) fatal len=18;", {0} },
    { "data then LF only", "set foo 0 0 3\r\nbar\nget x\r\n", 0,
      "k4:foo error(CLIENT_ERROR bad data chunk) fatal len=18;", {0} },
    { "data then CR junk", "set foo 0 0 3\r\nbar\rxget x\r\n", 0,
      "k4:foo error(CLIENT_ERROR bad data chunk) fatal len=19;", {0} },
    { "ms bad data chunk", "ms foo 3\r\nbarx\r\n", 0, "k3:foo error(CLIENT_ERROR bad data chunk) fatal len=13;", {0} },
    { "error then next request", "bogus\r\nget a\r\n", 0, "error(ERROR) rec len=7; k4:a done get len=7;", {0} },
    { "fatal stops the stream", "set a 0 0 1\r\nxy\r\nget a\r\n", 0,
      "k4:a error(CLIENT_ERROR bad data chunk) fatal len=14;", {0} },
};

/* Line and value bounds. */
static const struct req_case req_limits[] = {
    /* a line of exactly max_line bytes ("\r\n" included) passes, one byte more does not */
    { "line at bound", "version        \r\n", 0, "done version len=17;", { 0, 17, 0 } },
    { "line over bound", "version         \r\n", 0, "error(CLIENT_ERROR line too long) fatal len=16;", { 0, 17, 0 } },
    { "line over bound LF", "version        xx\n", 0, "error(CLIENT_ERROR line too long) fatal len=16;", { 0, 17, 0 } },
    { "endless line", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0, "error(CLIENT_ERROR line too long) fatal len=16;",
      { 0, 17, 0 } },
    { "bad line hits bound", "bogus xxxxxxxxxxxxxxxxxxxx\r\n", 0, "error(CLIENT_ERROR line too long) fatal len=16;",
      { 0, 17, 0 } },
    /* multigets have their own bound, as memcached lets get lines run long */
    { "get over max_line", "get aaaa bbbb cccc dddd\r\n", 0, "k4:aaaa k9:bbbb k14:cccc k19:dddd done get len=25;",
      { 0, 17, 0 } },
    { "get over max_get_line", "get aaaa bbbb cccc dddd\r\n", 0,
      "k4:aaaa k9:bbbb k14:cccc error(CLIENT_ERROR line too long) fatal len=19;", { 0, 17, 20 } },
    { "gat over max_line", "gat 0 aaaa bbbb cccc\r\n", 0, "k6:aaaa k11:bbbb k16:cccc done gat len=22;", { 0, 17, 0 } },
    { "value at bound", "set k 0 0 4\r\nabcd\r\n", 0, "k4:k done set v=4 len=19;", { 4, 0, 0 } },
    /* memcached: SERVER_ERROR at once, then swallows the block and 2 bytes unchecked */
    { "value too large", "set k 0 0 5\r\nhello\r\nget k\r\n", 0,
      "k4:k error(SERVER_ERROR object too large for cache) rec len=20; k4:k done get len=7;", { 4, 0, 0 } },
    { "value too large unchecked tail", "set k 0 0 5\r\nhelloXYget k\r\n", 0,
      "k4:k error(SERVER_ERROR object too large for cache) rec len=20; k4:k done get len=7;", { 4, 0, 0 } },
    { "value too large noreply", "set k 0 0 5 noreply\r\nhello\r\n", 0,
      "k4:k error(SERVER_ERROR object too large for cache) rec nr len=28;", { 4, 0, 0 } },
    { "value too large partial", "set k 0 0 5\r\nhel", 0, "k4:k partial 16 swallowing", { 4, 0, 0 } },
    { "ms too large", "ms k 5 T0\r\nhello\r\nmn\r\n", 0,
      "k3:k error(SERVER_ERROR object too large for cache) rec len=18; done mn len=4;", { 4, 0, 0 } },
    /* a bad line is judged before its size: memcached too says bad format here */
    { "too large and bad", "set k x 0 5\r\n", 0, "k4:k error(" FMT ") rec len=13;", { 4, 0, 0 } },
};

static void
test_req_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_ok) / sizeof(req_ok[0]); i++)
        check_req_case(&req_ok[i]);
}

static void
test_req_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_bad) / sizeof(req_bad[0]); i++)
        check_req_case(&req_bad[i]);
}

static void
test_req_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_limits) / sizeof(req_limits[0]); i++)
        check_req_case(&req_limits[i]);
}

/* The default bounds: 2048-byte lines, 250-byte keys, 1 MiB values. */
static void
test_req_defaults(void **state)
{
    (void)state;
    struct mc_req_parser p;
    mc_req_init(&p);
    assert_int_equal(p.max_key, 250);
    assert_int_equal(p.max_line, 2048);
    assert_int_equal(p.max_value, 1024 * 1024);
    assert_int_equal(p.cmd, MC_CMD_UNKNOWN);

    /* 2048 bytes through "\n" pass, 2049 do not */
    uint8_t *line = malloc(2049);
    assert_non_null(line);
    memcpy(line, "version", 7);
    memset(line + 7, ' ', 2049 - 7);
    line[2046] = '\r';
    line[2047] = '\n';
    size_t used;
    struct mc_tok key;
    assert_int_equal(mc_req_feed(&p, line, 2048, &used, &key), MC_EV_DONE);
    assert_int_equal(used, 2048);
    assert_int_equal(p.line_len, 2048);
    mc_req_reset(&p);
    line[2046] = ' ';
    line[2047] = '\r';
    line[2048] = '\n';
    assert_int_equal(mc_req_feed(&p, line, 2049, &used, &key), MC_EV_ERROR);
    assert_string_equal(p.err, "CLIENT_ERROR line too long");
    assert_false(p.recoverable);
    assert_int_equal(used, 2047);
    free(line);

    /* a value of exactly 1 MiB is forwarded; one byte more is refused */
    mc_req_reset(&p);
    const char *ok = "set k 0 0 1048576\r\n";
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)ok, strlen(ok), &used, &key), MC_EV_KEY);
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)ok + used, strlen(ok) - used, &used, &key), MC_EV_AGAIN);
    assert_false(p.swallowing);
    assert_int_equal(p.vlen, 1048576);
    mc_req_reset(&p);
    const char *big = "set k 0 0 1048577\r\n";
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)big, strlen(big), &used, &key), MC_EV_KEY);
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)big + used, strlen(big) - used, &used, &key), MC_EV_AGAIN);
    assert_true(p.swallowing);
}

/* An oversized value is skipped as it arrives, in many chunks, without being held. */
static void
test_req_swallow_stream(void **state)
{
    (void)state;
    struct mc_req_parser p;
    mc_req_init(&p);
    const char *line = "set big 0 0 2000000\r\n";
    size_t used, total = 0;
    struct mc_tok key;

    assert_int_equal(mc_req_feed(&p, (const uint8_t *)line, strlen(line), &used, &key), MC_EV_KEY);
    assert_int_equal(key.pos, 4);
    assert_int_equal(key.len, 3);
    total += used;
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)line + used, strlen(line) - used, &used, &key),
                     MC_EV_AGAIN);
    total += used;
    assert_int_equal(total, strlen(line));
    assert_true(p.swallowing);

    /* 2000000 bytes of data, then "\r\n", then the next request, in 4 KiB chunks */
    uint8_t *chunk = malloc(4096);
    assert_non_null(chunk);
    memset(chunk, 'x', 4096);
    uint64_t left = 2000000 + 2;
    int ev = MC_EV_AGAIN;
    while (left > 0) {
        size_t n = left < 4096 ? (size_t)left : 4096;
        ev = mc_req_feed(&p, chunk, n, &used, &key);
        assert_int_equal(used, n);
        left -= n;
        if (left > 0) {
            assert_int_equal(ev, MC_EV_AGAIN);
            assert_true(p.swallowing);
        }
    }
    free(chunk);
    assert_int_equal(ev, MC_EV_ERROR);
    assert_string_equal(p.err, "SERVER_ERROR object too large for cache");
    assert_true(p.recoverable);
    assert_false(p.swallowing);
    assert_int_equal(mc_req_msglen(&p), strlen(line) + 2000002);
    mc_req_reset(&p);
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)"version\r\n", 9, &used, &key), MC_EV_DONE);
    assert_int_equal(p.cmd, MC_VERSION);
}

/* A multi-megabyte get line streams its keys without any bound but max_get_line. */
static void
test_req_big_multiget(void **state)
{
    (void)state;
    enum { NKEYS = 20000 };
    size_t cap = 4 + NKEYS * 12 + 2;
    char *in = malloc(cap);
    assert_non_null(in);
    size_t n = 0;
    n += (size_t)sprintf(in + n, "get");
    for (int i = 0; i < NKEYS; i++)
        n += (size_t)sprintf(in + n, " key:%06d", i);
    n += (size_t)sprintf(in + n, "\r\n");

    struct mc_req_parser p;
    mc_req_init(&p);
    size_t at = 0, used;
    struct mc_tok key;
    uint32_t nk = 0;
    int ev;
    while ((ev = mc_req_feed(&p, (const uint8_t *)in + at, (n - at < 1000 ? n - at : 1000), &used, &key)) != MC_EV_DONE) {
        at += used;
        assert_int_not_equal(ev, MC_EV_ERROR);
        if (ev == MC_EV_KEY) {
            char want[16];
            snprintf(want, sizeof(want), "key:%06u", nk);
            assert_int_equal(key.len, 10);
            assert_memory_equal(in + key.pos, want, 10);
            nk++;
        }
    }
    at += used;
    assert_int_equal(at, n);
    assert_int_equal(nk, NKEYS);
    assert_int_equal(mc_req_nkeys(&p), NKEYS);
    assert_int_equal(mc_req_msglen(&p), n);
    assert_int_equal(p.line_len, n);
    free(in);
}

/* Feeding nothing is harmless; results are as documented. */
static void
test_req_fields(void **state)
{
    (void)state;
    struct mc_req_parser p;
    size_t used = 7;
    struct mc_tok key;
    mc_req_init(&p);
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)"", 0, &used, &key), MC_EV_AGAIN);
    assert_int_equal(used, 0);
    assert_int_equal(mc_req_msglen(&p), 0);

    const char *in = "cas foo 1 2 3 4 noreply\r\nabc\r\n";
    int ev;
    size_t at = 0;
    while ((ev = mc_req_feed(&p, (const uint8_t *)in + at, strlen(in) - at, &used, &key)) == MC_EV_KEY)
        at += used;
    at += used;
    assert_int_equal(ev, MC_EV_DONE);
    assert_int_equal(at, strlen(in));
    assert_int_equal(p.cmd, MC_CAS);
    assert_true(p.noreply);
    assert_int_equal(p.vlen, 3);
    assert_int_equal(p.line_len, 25);
    assert_int_equal(mc_req_msglen(&p), 30);
    assert_int_equal(mc_req_nkeys(&p), 1);

    /* reset keeps the limits and clears the rest */
    p.max_value = 5;
    mc_req_reset(&p);
    assert_int_equal(p.max_value, 5);
    assert_int_equal(p.cmd, MC_CMD_UNKNOWN);
    assert_false(p.noreply);
    assert_int_equal(p.vlen, 0);
    assert_int_equal(mc_req_nkeys(&p), 0);

    /* the command is known as soon as its word is complete, and where it starts */
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)"touch ", 6, &used, &key), MC_EV_AGAIN);
    assert_int_equal(p.cmd, MC_TOUCH);
    assert_int_equal(p.cmd_pos, 0);
    mc_req_reset(&p);
    assert_int_equal(mc_req_feed(&p, (const uint8_t *)"   version x\r\n", 14, &used, &key), MC_EV_DONE);
    assert_int_equal(p.cmd, MC_VERSION);
    assert_int_equal(p.cmd_pos, 3);

    for (int c = 0; c < MC_CMD_COUNT; c++)
        assert_non_null(mc_cmd_name((enum mc_cmd)c));
    assert_string_equal(mc_cmd_name(MC_FLUSH_ALL), "flush_all");
    assert_string_equal(mc_cmd_name(MC_ME), "me");
    assert_string_equal(mc_cmd_name(MC_CMD_COUNT), "unknown");
}

/* ---- reply driver ---------------------------------------------------------------- */

struct rsp_run {
    struct mc_rsp_parser p;
    enum mc_cmd cmd;
    bool then_mn;
    struct logbuf log;
    const uint8_t *in;
    uint64_t mstart;
    uint32_t max_line;
    bool stopped;
};

static void
rsp_run_chunk(struct rsp_run *r, const uint8_t *chunk, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, chunk, n);
    size_t at = 0;
    int guard = 0;

    while (!r->stopped) {
        size_t used = (size_t)-1;
        struct mc_elem el;
        memset(&el, 0xff, sizeof(el));
        int ev = mc_rsp_feed(&r->p, b + at, n - at, &used, &el);

        assert_true(used <= n - at);
        at += used;
        assert_true(++guard < 100000);
        if (ev == MC_EV_AGAIN) {
            assert_int_equal(at, n);
            break;
        }
        if (ev == MC_EV_KEY) {
            assert_true(el.pos + el.len == mc_rsp_msglen(&r->p));
            assert_true(el.key.pos > el.pos && el.key.pos + el.key.len < el.pos + el.len);
            logf_(&r->log, "item %llu+%llu k%llu", (unsigned long long)el.pos, (unsigned long long)el.len,
                  (unsigned long long)el.key.pos);
            log_text(&r->log, r->in + r->mstart, el.key.pos, el.key.len);
            logf_(&r->log, " ");
            continue;
        }
        if (ev == MC_EV_DONE) {
            const struct mc_rsp_parser *p = &r->p;
            assert_true(p->kind > MC_RSP_NONE && p->kind <= MC_RSP_STATS);
            assert_true(p->word_id > MC_RW_NONE && p->word_id < MC_RW_COUNT);
            logf_(&r->log, "done %s %s%s", kind_names[p->kind], word_names[p->word_id],
                  p->is_error ? " err" : "");
            if (p->kind == MC_RSP_META_VALUE)
                logf_(&r->log, " va=%llu+%llu", (unsigned long long)p->data_pos, (unsigned long long)p->vlen);
            logf_(&r->log, " end=%llu", (unsigned long long)p->end_pos);
            if (r->then_mn)
                logf_(&r->log, " body=%llu", (unsigned long long)p->body_len);
            else
                assert_int_equal(p->body_len, mc_rsp_msglen(p));
            logf_(&r->log, " len=%llu; ", (unsigned long long)mc_rsp_msglen(p));
            size_t u2 = 1;
            assert_int_equal(mc_rsp_feed(&r->p, b + at, n - at, &u2, &el), MC_EV_DONE);
            assert_int_equal(u2, 0);
            r->mstart += mc_rsp_msglen(&r->p);
            mc_rsp_init(&r->p, r->cmd);
            if (r->max_line)
                r->p.max_line = r->max_line;
            r->p.then_mn = r->then_mn;
        } else {
            assert_int_equal(ev, MC_EV_ERROR);
            assert_non_null(r->p.err);
            logf_(&r->log, "error(%s); ", r->p.err);
            size_t u2 = 1;
            assert_int_equal(mc_rsp_feed(&r->p, b + at, n - at, &u2, &el), MC_EV_ERROR);
            assert_int_equal(u2, 0);
            r->stopped = true;
        }
    }
    free(b);
}

static void
rsp_log(enum mc_cmd cmd, bool then_mn, const uint8_t *in, size_t len, uint32_t max_line, int mode,
        size_t cut, struct logbuf *out)
{
    struct rsp_run *r = malloc(sizeof(*r));
    assert_non_null(r);
    memset(r, 0, sizeof(*r));
    r->cmd = cmd;
    r->in = in;
    r->max_line = max_line;
    mc_rsp_init(&r->p, cmd);
    if (max_line)
        r->p.max_line = max_line;
    r->then_mn = then_mn;
    r->p.then_mn = then_mn;
    if (mode == MODE_WHOLE) {
        rsp_run_chunk(r, in, len);
    } else if (mode == MODE_SPLIT) {
        rsp_run_chunk(r, in, cut);
        rsp_run_chunk(r, in + cut, len - cut);
    } else {
        for (size_t i = 0; i < len; i++)
            rsp_run_chunk(r, in + i, 1);
    }
    if (!r->stopped && mc_rsp_msglen(&r->p) > 0)
        logf_(&r->log, "partial %llu", (unsigned long long)mc_rsp_msglen(&r->p));
    log_trim(&r->log);
    *out = r->log;
    free(r);
}

struct rsp_case {
    const char *name;
    enum mc_cmd cmd;
    const char *in;
    const char *expect;
    uint32_t max_line;
};

/* then_mn: the case's request was quiet and followed by mn (mc_rsp_parser.then_mn). */
static void
check_rsp_case_mode(const struct rsp_case *c, bool then_mn)
{
    size_t len = strlen(c->in);
    struct logbuf *got = malloc(sizeof(*got));
    assert_non_null(got);

    rsp_log(c->cmd, then_mn, (const uint8_t *)c->in, len, c->max_line, MODE_WHOLE, 0, got);
    if (strcmp(got->s, c->expect) != 0)
        fail_msg("reply case '%s' (whole)\n  expected: %s\n  got:      %s", c->name, c->expect, got->s);
    for (size_t cut = 0; cut <= len; cut++) {
        rsp_log(c->cmd, then_mn, (const uint8_t *)c->in, len, c->max_line, MODE_SPLIT, cut, got);
        if (strcmp(got->s, c->expect) != 0)
            fail_msg("reply case '%s' (split at %zu)\n  expected: %s\n  got:      %s", c->name, cut,
                     c->expect, got->s);
    }
    rsp_log(c->cmd, then_mn, (const uint8_t *)c->in, len, c->max_line, MODE_BYTES, 0, got);
    if (strcmp(got->s, c->expect) != 0)
        fail_msg("reply case '%s' (byte by byte)\n  expected: %s\n  got:      %s", c->name, c->expect, got->s);
    free(got);
}

/* Replies captured from memcached 1.6.18 on 127.0.0.1:42701 (the "nokey" and "Zm9v"
 * ones on 42702); the request that produced each is in its name. */
static const struct rsp_case rsp_real[] = {
    { "get foo (hit)", MC_GET, "VALUE foo 5 3\r\nbar\r\nEND\r\n",
      "item 0+20 k6:foo done values END end=20 len=25;", 0 },
    { "gets foo", MC_GETS, "VALUE foo 5 3 1\r\nbar\r\nEND\r\n",
      "item 0+22 k6:foo done values END end=22 len=27;", 0 },
    { "get foo nope baz", MC_GET, "VALUE foo 5 3\r\nbar\r\nVALUE baz 0 0\r\n\r\nEND\r\n",
      "item 0+20 k6:foo item 20+17 k26:baz done values END end=37 len=42;", 0 },
    { "gets foo baz", MC_GETS, "VALUE foo 5 3 1\r\nbar\r\nVALUE baz 0 0 2\r\n\r\nEND\r\n",
      "item 0+22 k6:foo item 22+19 k28:baz done values END end=41 len=46;", 0 },
    { "get nope", MC_GET, "END\r\n", "done values END end=0 len=5;", 0 },
    { "gat 0 foo", MC_GAT, "VALUE foo 5 3\r\nbar\r\nEND\r\n", "item 0+20 k6:foo done values END end=20 len=25;", 0 },
    { "gats 0 foo nope", MC_GATS, "VALUE foo 5 3 1\r\nbar\r\nEND\r\n",
      "item 0+22 k6:foo done values END end=22 len=27;", 0 },
    { "get K251", MC_GET, "CLIENT_ERROR bad command line format\r\n", "done line CLIENT_ERROR err end=0 len=38;", 0 },
    { "set foo 5 0 3", MC_SET, "STORED\r\n", "done line STORED end=0 len=8;", 0 },
    { "add foo (exists)", MC_ADD, "NOT_STORED\r\n", "done line NOT_STORED end=0 len=12;", 0 },
    { "cas foo 0 0 1 999", MC_CAS, "EXISTS\r\n", "done line EXISTS end=0 len=8;", 0 },
    { "cas nope 0 0 1 1", MC_CAS, "NOT_FOUND\r\n", "done line NOT_FOUND end=0 len=11;", 0 },
    { "set big 0 0 2000000", MC_SET, "SERVER_ERROR object too large for cache\r\n",
      "done line SERVER_ERROR err end=0 len=41;", 0 },
    { "set foo 0 0 3 + barx", MC_SET, "CLIENT_ERROR bad data chunk\r\n", "done line CLIENT_ERROR err end=0 len=29;", 0 },
    { "incr n 5", MC_INCR, "10\r\n", "done line NUMBER end=0 len=4;", 0 },
    { "decr n 3", MC_DECR, "7\r\n", "done line NUMBER end=0 len=3;", 0 },
    { "incr nope 1", MC_INCR, "NOT_FOUND\r\n", "done line NOT_FOUND end=0 len=11;", 0 },
    { "incr foo 1 (not a number)", MC_INCR, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
      "done line CLIENT_ERROR err end=0 len=62;", 0 },
    { "delete baz", MC_DELETE, "DELETED\r\n", "done line DELETED end=0 len=9;", 0 },
    { "delete baz (again)", MC_DELETE, "NOT_FOUND\r\n", "done line NOT_FOUND end=0 len=11;", 0 },
    { "touch foo 100", MC_TOUCH, "TOUCHED\r\n", "done line TOUCHED end=0 len=9;", 0 },
    { "touch nope 100", MC_TOUCH, "NOT_FOUND\r\n", "done line NOT_FOUND end=0 len=11;", 0 },
    { "version", MC_VERSION, "VERSION 1.6.18\r\n", "done line VERSION end=0 len=16;", 0 },
    { "verbosity 1", MC_VERBOSITY, "OK\r\n", "done line OK end=0 len=4;", 0 },
    { "flush_all", MC_FLUSH_ALL, "OK\r\n", "done line OK end=0 len=4;", 0 },
    { "stats detail dump", MC_STATS, "END\r\n", "done stats END end=0 len=5;", 0 },
    { "bogus", MC_CMD_UNKNOWN, "ERROR\r\n", "done line ERROR err end=0 len=7;", 0 },
    { "mg foo v f t c k s", MC_MG, "VA 3 f5 t-1 c1 kfoo s3\r\nbar\r\n", "done va VA va=24+3 end=0 len=29;", 0 },
    { "mg foo", MC_MG, "HD\r\n", "done line HD end=0 len=4;", 0 },
    { "mg foo k O123 t", MC_MG, "HD kfoo O123 t-1\r\n", "done line HD end=0 len=18;", 0 },
    { "mg nope v", MC_MG, "EN\r\n", "done line EN end=0 len=4;", 0 },
    { "mg nokey v f t c k s (miss)", MC_MG, "EN knokey\r\n", "done line EN end=0 len=11;", 0 },
    { "mg nokey k O55 v (miss)", MC_MG, "EN knokey O55\r\n", "done line EN end=0 len=15;", 0 },
    { "mg Zm9v b v k (after ms Zm9v 2 b)", MC_MG, "VA 2 kZm9v b\r\nhi\r\n", "done va VA va=14+2 end=0 len=18;", 0 },
    { "mg nope v q + mn (quiet miss: only MN)", MC_MG, "MN\r\n", "done line MN end=0 len=4;", 0 },
    { "mg foo k v q x2 + mn", MC_MG, "VA 3 kfoo\r\nbar\r\nVA 3 kfoo\r\nbar\r\nMN\r\n",
      "done va VA va=11+3 end=0 len=16; done va VA va=11+3 end=0 len=16; done line MN end=0 len=4;", 0 },
    { "mg foo zz", MC_MG, "CLIENT_ERROR invalid flag\r\n", "done line CLIENT_ERROR err end=0 len=27;", 0 },
    { "ms foo 3 T0 F5", MC_MS, "HD\r\n", "done line HD end=0 len=4;", 0 },
    { "ms foo 3 c", MC_MS, "HD c7\r\n", "done line HD end=0 len=7;", 0 },
    { "ms nope 1 MA", MC_MS, "NS\r\n", "done line NS end=0 len=4;", 0 },
    { "ms foo 1 C1", MC_MS, "EX\r\n", "done line EX end=0 len=4;", 0 },
    { "md foo C1", MC_MD, "EX\r\n", "done line EX end=0 len=4;", 0 },
    { "md nope", MC_MD, "NF\r\n", "done line NF end=0 len=4;", 0 },
    { "md foo q + mn", MC_MD, "MN\r\n", "done line MN end=0 len=4;", 0 },
    { "ma n", MC_MA, "HD\r\n", "done line HD end=0 len=4;", 0 },
    { "ma n v", MC_MA, "VA 1\r\n9\r\n", "done va VA va=6+1 end=0 len=9;", 0 },
    { "ma nope", MC_MA, "NF\r\n", "done line NF end=0 len=4;", 0 },
    { "ma nope2 N0 J13 v t", MC_MA, "VA 2 t-1\r\n13\r\n", "done va VA va=10+2 end=0 len=14;", 0 },
    { "mn", MC_MN, "MN\r\n", "done line MN end=0 len=4;", 0 },
    { "me n", MC_ME, "ME n exp=-1 la=1 cas=10 fetch=no cls=1 size=62\r\n", "done line ME end=0 len=48;", 0 },
    { "me nope", MC_ME, "EN\r\n", "done line EN end=0 len=4;", 0 },
};

/* Replies built by hand in the formats above, for what a capture cannot easily show. */
static const struct rsp_case rsp_made[] = {
    { "value holding END", MC_GET, "VALUE k 0 5\r\nEND\r\n\r\nEND\r\n", "item 0+20 k6:k done values END end=20 len=25;", 0 },
    { "value holding CRLF VALUE", MC_GET, "VALUE k 0 9\r\nVALUE x\r\n\r\nEND\r\n",
      "item 0+24 k6:k done values END end=24 len=29;", 0 },
    { "error after an item", MC_GET, "VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n",
      "item 0+16 k6:a done line SERVER_ERROR err end=16 len=65;", 0 },
    { "bare LF lines", MC_GET, "VALUE a 0 1\nx\r\nEND\n", "item 0+15 k6:a done values END end=15 len=19;", 0 },
    { "stats lines", MC_STATS, "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n", "done stats END end=27 len=32;", 0 },
    { "pipelined replies", MC_SET, "STORED\r\nNOT_STORED\r\nSERVER_ERROR out of memory\r\n",
      "done line STORED end=0 len=8; done line NOT_STORED end=0 len=12; done line SERVER_ERROR err end=0 len=28;", 0 },
    { "stored with junk", MC_SET, "STORED junk\r\n", "done line STORED end=0 len=13;", 0 },
    { "incr big number", MC_INCR, "18446744073709551615\r\n", "done line NUMBER end=0 len=22;", 0 },
    { "partial value", MC_GET, "VALUE k 0 5\r\nab", "partial 15", 0 },
    /* malformed or mismatched replies: the connection is out of step */
    { "unexpected word", MC_GET, "STORED\r\n", "error(reply does not answer the request);", 0 },
    { "number for set", MC_SET, "10\r\n", "error(reply does not answer the request);", 0 },
    { "VA for md", MC_MD, "VA 3\r\nbar\r\n", "error(reply does not answer the request);", 0 },
    { "HD for mn", MC_MN, "HD\r\n", "error(reply does not answer the request);", 0 },
    { "anything for quit", MC_QUIT, "OK\r\n", "error(reply does not answer the request);", 0 },
    { "unknown word", MC_GET, "FOO\r\n", "error(unknown reply);", 0 },
    { "lower-case word", MC_SET, "stored\r\n", "error(unknown reply);", 0 },
    { "empty line", MC_SET, "\r\n", "error(empty reply line);", 0 },
    { "bad data chunk", MC_GET, "VALUE foo 5 3\r\nbarx\r\nEND\r\n", "error(bad data chunk);", 0 },
    { "VA bad data chunk", MC_MG, "VA 3\r\nbar\n", "error(bad data chunk);", 0 },
    { "VALUE short", MC_GET, "VALUE foo 5\r\nbar\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VALUE bad flags", MC_GET, "VALUE foo x 3\r\nbar\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VALUE flags over 32 bits", MC_GET, "VALUE foo 4294967296 1\r\nx\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VALUE flags 32 bits", MC_GET, "VALUE foo 4294967295 1\r\nx\r\nEND\r\n",
      "item 0+27 k6:foo done values END end=27 len=32;", 0 },
    { "VALUE bad length", MC_GET, "VALUE foo 0 -3\r\nbar\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VALUE too many", MC_GETS, "VALUE foo 5 3 1 9\r\nbar\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VALUE key too long", MC_GET, "VALUE " K251 " 0 1\r\nx\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VALUE key control byte", MC_GET, "VALUE a\x01 0 1\r\nx\r\nEND\r\n", "error(bad VALUE line);", 0 },
    { "VA no size", MC_MG, "VA\r\n", "error(bad VA line);", 0 },
    { "VA bad size", MC_MG, "VA x\r\n", "error(bad VA line);", 0 },
    { "line at bound", MC_VERSION, "VERSION 1.6.18\r\n", "done line VERSION end=0 len=16;", 16 },
    { "line over bound", MC_VERSION, "VERSION 1.6.180\r\n", "error(reply line too long);", 16 },
    { "line over bound in stats", MC_STATS, "STAT a 1\r\nSTAT pid 123456\r\nEND\r\n", "error(reply line too long);", 16 },
};

/* Replies to a quiet meta request followed by "mn", as memcached 1.6.18 gave them on
 * 127.0.0.1:24191 (`memcached -U 0`) to the request in each name followed by "mn"
 * (after "ms foo 3" / "bar"), except those marked (made) or out of step, built by hand. */
static const struct rsp_case rsp_quiet[] = {
    { "mg nope v q (miss)", MC_MG, "MN\r\n", "done line MN end=0 body=0 len=4;", 0 },
    { "mg foo v q k (hit)", MC_MG, "VA 3 kfoo\r\nbar\r\nMN\r\n",
      "done va VA va=11+3 end=0 body=16 len=20;", 0 },
    { "ms foo 3 q", MC_MS, "MN\r\n", "done line MN end=0 body=0 len=4;", 0 },
    { "ms nope 1 q MA", MC_MS, "NS\r\nMN\r\n", "done line NS end=0 body=4 len=8;", 0 },
    { "md foo q", MC_MD, "MN\r\n", "done line MN end=0 body=0 len=4;", 0 },
    { "ma c1 q N0 J10 (autovivified)", MC_MA, "HD\r\nMN\r\n", "done line HD end=0 body=4 len=8;", 0 },
    { "ma c1 q v (HD, VA quiet too)", MC_MA, "MN\r\n", "done line MN end=0 body=0 len=4;", 0 },
    { "(made) a VA before the MN", MC_MA, "VA 2\r\n12\r\nMN\r\n", "done va VA va=6+2 end=0 body=10 len=14;", 0 },
    { "ma nope q", MC_MA, "NF\r\nMN\r\n", "done line NF end=0 body=4 len=8;", 0 },
    { "mg foo q zz", MC_MG, "CLIENT_ERROR invalid flag\r\nMN\r\n",
      "done line CLIENT_ERROR err end=0 body=27 len=31;", 0 },
    { "(made) two quiet replies in a row", MC_MG, "MN\r\nVA 1\r\nx\r\nMN\r\n",
      "done line MN end=0 body=0 len=4; done va VA va=6+1 end=0 body=9 len=13;", 0 },
    /* out of step: after the request's own reply only MN may come */
    { "two replies", MC_MG, "HD\r\nHD\r\n", "error(reply does not answer the request);", 0 },
    { "error in place of MN", MC_MG, "EN\r\nERROR\r\n", "error(reply does not answer the request);", 0 },
    { "(made) MN for a quiet me", MC_ME, "MN\r\n", "done line MN end=0 body=0 len=4;", 0 },
};

static void
test_rsp_quiet(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rsp_quiet) / sizeof(rsp_quiet[0]); i++)
        check_rsp_case_mode(&rsp_quiet[i], true);
}

static void
check_rsp_case(const struct rsp_case *c)
{
    check_rsp_case_mode(c, false);
}

static void
test_rsp_real(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rsp_real) / sizeof(rsp_real[0]); i++)
        check_rsp_case(&rsp_real[i]);
}

static void
test_rsp_made(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rsp_made) / sizeof(rsp_made[0]); i++)
        check_rsp_case(&rsp_made[i]);
}

/* A large value is skipped by length in small chunks. */
static void
test_rsp_big_value(void **state)
{
    (void)state;
    struct mc_rsp_parser p;
    mc_rsp_init(&p, MC_GETS);
    assert_int_equal(p.max_line, 2048);
    assert_int_equal(p.max_key, 250);
    const char *hdr = "VALUE big 0 3000000 42\r\n";
    size_t used;
    struct mc_elem el;
    assert_int_equal(mc_rsp_feed(&p, (const uint8_t *)hdr, strlen(hdr), &used, &el), MC_EV_AGAIN);
    assert_int_equal(used, strlen(hdr));
    uint8_t *chunk = malloc(4096);
    assert_non_null(chunk);
    memset(chunk, 'E', 4096);  /* "E" bytes, so a scan for END would go wrong */
    uint64_t left = 3000000;
    while (left > 0) {
        size_t n = left < 4096 ? (size_t)left : 4096;
        assert_int_equal(mc_rsp_feed(&p, chunk, n, &used, &el), MC_EV_AGAIN);
        assert_int_equal(used, n);
        left -= n;
    }
    free(chunk);
    assert_int_equal(mc_rsp_feed(&p, (const uint8_t *)"\r\nEND\r\n", 7, &used, &el), MC_EV_KEY);
    assert_int_equal(used, 2);
    assert_int_equal(el.pos, 0);
    assert_int_equal(el.len, strlen(hdr) + 3000002);
    assert_int_equal(el.key.pos, 6);
    assert_int_equal(el.key.len, 3);
    assert_int_equal(mc_rsp_feed(&p, (const uint8_t *)"END\r\n", 5, &used, &el), MC_EV_DONE);
    assert_int_equal(p.end_pos, strlen(hdr) + 3000002);
    assert_int_equal(mc_rsp_msglen(&p), strlen(hdr) + 3000002 + 5);
    assert_int_equal(p.nitems, 1);
    assert_int_equal(p.kind, MC_RSP_VALUE_END);
}

/* ---- robustness ------------------------------------------------------------------ */

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Random bytes drawn from a protocol-ish alphabet, in random chunks: every call makes
 * progress or reports an event, never reads past its chunk (ASan), and a finished
 * tokenizer keeps answering the same. */
static void
test_random_input(void **state)
{
    (void)state;
    static const char alpha[] = "getsmdanVALUEHDSTORED 0123456789\r\n\r\n  \x01\xff-+qbMNVA";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t in[512];

    for (int round = 0; round < 3000; round++) {
        size_t len = 1 + (size_t)(rng_next(&seed) % sizeof(in));
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)alpha[rng_next(&seed) % (sizeof(alpha) - 1)];
        struct mc_req_parser rq;
        struct mc_rsp_parser rs;
        mc_req_init(&rq);
        rq.max_line = 64;
        rq.max_get_line = 128;
        rq.max_value = 32;
        mc_rsp_init(&rs, (enum mc_cmd)(rng_next(&seed) % MC_CMD_COUNT));
        rs.max_line = 64;
        bool then_mn = rng_next(&seed) & 1;
        rs.then_mn = then_mn;
        bool rq_dead = false, rs_dead = false;
        size_t at = 0;
        while (at < len) {
            size_t n = 1 + (size_t)(rng_next(&seed) % 17);
            if (n > len - at)
                n = len - at;
            uint8_t *b = malloc(n);
            assert_non_null(b);
            memcpy(b, in + at, n);
            for (size_t k = 0; !rq_dead && k < n;) {
                size_t used;
                struct mc_tok key;
                int ev = mc_req_feed(&rq, b + k, n - k, &used, &key);
                assert_true(used <= n - k);
                k += used;
                if (ev == MC_EV_KEY)
                    assert_true(key.len >= 1 && key.len <= 250 && key.pos + key.len <= mc_req_msglen(&rq));
                else if (ev == MC_EV_DONE || (ev == MC_EV_ERROR && rq.recoverable))
                    mc_req_reset(&rq);
                else if (ev == MC_EV_ERROR)
                    rq_dead = true;
                else
                    assert_int_equal(k, n);
            }
            for (size_t k = 0; !rs_dead && k < n;) {
                size_t used;
                struct mc_elem el;
                int ev = mc_rsp_feed(&rs, b + k, n - k, &used, &el);
                assert_true(used <= n - k);
                k += used;
                if (ev == MC_EV_KEY)
                    assert_true(el.pos + el.len == mc_rsp_msglen(&rs));
                else if (ev == MC_EV_DONE) {
                    assert_true(rs.body_len <= mc_rsp_msglen(&rs));
                    mc_rsp_init(&rs, rs.cmd);
                    rs.max_line = 64;
                    rs.then_mn = then_mn;
                }
                else if (ev == MC_EV_ERROR)
                    rs_dead = true;
                else
                    assert_int_equal(k, n);
            }
            free(b);
            at += n;
        }
    }
}

/* Random pipelines of valid requests, fed whole and in random chunks, give one log. */
static void
test_random_pipelines(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "get a\r\n", "gets a bb ccc\r\n", "gat 1 k\r\n", "set k 0 0 3\r\nabc\r\n", "add k 1 1 0\r\n\r\n",
        "cas k 0 0 1 5 noreply\r\nz\r\n", "incr k 1\r\n", "decr k 2 noreply\r\n", "delete k\r\n",
        "touch k 5\r\n", "version\r\n", "mn\r\n", "mg k v q\r\n", "ms k 2 T1\r\nxy\r\n", "md k\r\n",
        "ma k v\r\n", "me k\r\n", "bogus\r\n", "get\r\n", "set k 0 0 40\r\n0123456789012345678901234567890123456789\r\n",
    };
    uint64_t seed = 12345;
    struct limits lim = { 32, 0, 0 };
    struct logbuf *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);

    for (int round = 0; round < 300; round++) {
        char in[2048];
        size_t len = 0;
        int nreq = 1 + (int)(rng_next(&seed) % 12);
        for (int i = 0; i < nreq; i++) {
            const char *r = reqs[rng_next(&seed) % (sizeof(reqs) / sizeof(reqs[0]))];
            memcpy(in + len, r, strlen(r));
            len += strlen(r);
        }
        req_log((const uint8_t *)in, len, &lim, MODE_WHOLE, 0, a);
        assert_null(strstr(a->s, "fatal"));
        assert_null(strstr(a->s, "partial"));

        struct req_run *r = malloc(sizeof(*r));
        assert_non_null(r);
        req_run_init(r, (const uint8_t *)in, &lim);
        for (size_t at = 0; at < len;) {
            size_t n = 1 + (size_t)(rng_next(&seed) % 9);
            if (n > len - at)
                n = len - at;
            req_run_chunk(r, (const uint8_t *)in + at, n);
            at += n;
        }
        req_run_end(r);
        log_trim(&r->log);
        *b = r->log;
        free(r);
        assert_string_equal(a->s, b->s);
    }
    free(a);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_ok),
        cmocka_unit_test(test_req_bad),
        cmocka_unit_test(test_req_limits),
        cmocka_unit_test(test_req_defaults),
        cmocka_unit_test(test_req_swallow_stream),
        cmocka_unit_test(test_req_big_multiget),
        cmocka_unit_test(test_req_fields),
        cmocka_unit_test(test_rsp_real),
        cmocka_unit_test(test_rsp_made),
        cmocka_unit_test(test_rsp_quiet),
        cmocka_unit_test(test_rsp_big_value),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_random_pipelines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
