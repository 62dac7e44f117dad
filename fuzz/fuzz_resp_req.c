/* fuzz/fuzz_resp_req.c: libFuzzer target for the RESP request tokenizer (whole vs chunked, with invariants). */
#include "fuzz_util.h"

#include "proto/resp.h"

/*
 * The input is a stream of requests (a pipeline). It is tokenized whole, in PRNG-sized
 * chunks and byte by byte; after each DONE the tokenizer is reset and goes on, after an
 * ERROR the run stops (the proxy closes such a connection). The three event logs must be
 * identical, and every event must describe bytes that are really there:
 *  - a call consumes at most what it was given, AGAIN consumes all of it;
 *  - msglen grows by what was consumed, or drops only when an empty message was skipped;
 *  - an argument lies inside its message; multibulk: "$<len>\r\n" before it and "\r\n"
 *    after it, and the raw tokens tile the message after its "*<nargs>\r\n" header;
 *    inline: no separator inside it, only separators between arguments, '\n' at the end;
 *  - DONE and ERROR are sticky and consume nothing.
 */

enum { EV_ARG = 1, EV_DONE, EV_ERROR, EV_PARTIAL };

/* Limits for this input: the defaults, or (one input in four) small ones. */
static void
set_limits(struct resp_req_parser *p, const uint8_t *in, size_t len)
{
    struct fz_rng r;

    fz_rng_seed(&r, in, len, 0x1111);
    if (fz_below(&r, 4) != 0)
        return;
    p->max_inline = (uint32_t)(1 + fz_below(&r, 64));
    p->max_bulk = fz_below(&r, 80);
    p->max_args = fz_below(&r, 10);
}

static bool
inl_sep(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void
run(const uint8_t *in, size_t len, enum fz_mode mode, struct fz_log *lg, void *ctx)
{
    (void)ctx;
    struct resp_req_parser p;
    struct fz_feed f;
    bool more;
    uint64_t tile = 0;     /* multibulk: where the next raw token must start; inline: end of the last argument */

    resp_req_init(&p);
    set_limits(&p, in, len);
    fz_feed_init(&f, in, len, mode, 0x2222);
    more = fz_feed_next(&f);

    for (;;) {
        size_t n, used = SIZE_MAX;
        const uint8_t *buf = fz_feed_ptr(&f, &n);
        struct resp_arg arg;
        uint64_t before = resp_req_msglen(&p);
        uint64_t nargs_before = resp_req_nargs(&p);
        int ev;

        memset(&arg, 0xa5, sizeof(arg));
        ev = resp_req_feed(&p, buf, n, &used, &arg);

        uint64_t ml = resp_req_msglen(&p);
        uint64_t pos = fz_feed_consumed(&f, used, n, ml);
        FZ_CHECK(ml == before + used || (ml < before + used && nargs_before == 0),
                 "msglen %llu after %llu + %zu (nargs before %llu)", (unsigned long long)ml,
                 (unsigned long long)before, used, (unsigned long long)nargs_before);
        uint64_t start = pos - ml;
        if (ml < before + used)
            tile = 0;   /* an empty message was skipped: a new one started */

        if (ev == RESP_EV_AGAIN) {
            if (!fz_feed_again(&f, used, n, &more))
                break;
            continue;
        }
        if (ev == RESP_EV_ARG) {
            FZ_CHECK(resp_req_nargs(&p) == nargs_before + 1, "nargs %llu after %llu",
                     (unsigned long long)resp_req_nargs(&p), (unsigned long long)nargs_before);
            FZ_CHECK(arg.pos >= arg.hdr, "pos %llu < hdr %u", (unsigned long long)arg.pos, arg.hdr);
            const uint8_t *a = in + start + arg.pos;
            if (!resp_req_inline(&p)) {
                char hdr[32];
                int hl = snprintf(hdr, sizeof(hdr), "$%llu\r\n", (unsigned long long)arg.len);

                FZ_CHECK(arg.pos + arg.len + 2 <= ml, "bulk [%llu+%llu+2] past msglen %llu",
                         (unsigned long long)arg.pos, (unsigned long long)arg.len,
                         (unsigned long long)ml);
                FZ_CHECK(arg.hdr == (uint32_t)hl && memcmp(a - hl, hdr, (size_t)hl) == 0,
                         "bulk header of %u bytes does not say %s", arg.hdr, hdr);
                FZ_CHECK(a[arg.len] == '\r' && a[arg.len + 1] == '\n', "no CRLF after bulk");
                if (nargs_before == 0) {
                    /* "*<n>\r\n" ends where the first token starts */
                    FZ_CHECK(arg.pos - arg.hdr >= 4 && in[start] == '*' &&
                             in[start + arg.pos - arg.hdr - 2] == '\r',
                             "no multibulk header before the first bulk at %llu",
                             (unsigned long long)arg.pos);
                } else {
                    FZ_CHECK(arg.pos - arg.hdr == tile, "bulk at %llu, previous ended at %llu",
                             (unsigned long long)(arg.pos - arg.hdr), (unsigned long long)tile);
                }
                tile = arg.pos + arg.len + 2;
            } else {
                FZ_CHECK(arg.hdr == 0 && arg.len > 0, "inline arg hdr %u len %llu", arg.hdr,
                         (unsigned long long)arg.len);
                FZ_CHECK(arg.pos + arg.len + 1 <= ml, "inline arg past msglen");
                FZ_CHECK(nargs_before == 0 || arg.pos > tile, "inline arg at %llu, previous ended %llu",
                         (unsigned long long)arg.pos, (unsigned long long)tile);
                for (uint64_t i = nargs_before == 0 ? 0 : tile; i < arg.pos; i++)
                    FZ_CHECK(inl_sep(in[start + i]), "byte 0x%02x between inline args", in[start + i]);
                for (uint64_t i = 0; i < arg.len; i++)
                    /* '\v' and '\f' separate arguments but are data inside one, as in Redis */
                    FZ_CHECK(a[i] != ' ' && a[i] != '\t' && a[i] != '\r' && a[i] != '\n' &&
                             a[i] != '\0' && a[i] != '"' && a[i] != '\'',
                             "byte 0x%02x inside an inline arg", a[i]);
                FZ_CHECK(a[arg.len] == ' ' || a[arg.len] == '\t' || a[arg.len] == '\r' ||
                         a[arg.len] == '\n', "inline arg ends at 0x%02x", a[arg.len]);
                tile = arg.pos + arg.len;
            }
            fz_log_add(lg, EV_ARG, (int)resp_req_inline(&p), start, arg.pos, arg.len, arg.hdr, NULL);
            continue;
        }
        if (ev == RESP_EV_DONE) {
            uint64_t na = resp_req_nargs(&p);
            struct resp_arg dummy;
            size_t u2 = SIZE_MAX;

            FZ_CHECK(ml > 0 && na > 0, "DONE with msglen %llu nargs %llu", (unsigned long long)ml,
                     (unsigned long long)na);
            FZ_CHECK(in[start + ml - 1] == '\n', "message does not end with LF");
            if (!resp_req_inline(&p)) {
                char hdr[32];
                int hl = snprintf(hdr, sizeof(hdr), "*%llu\r\n", (unsigned long long)na);
                FZ_CHECK(ml >= (uint64_t)hl && memcmp(in + start, hdr, (size_t)hl) == 0,
                         "message does not start with %s", hdr);
                FZ_CHECK(tile == ml, "tokens end at %llu, message at %llu", (unsigned long long)tile,
                         (unsigned long long)ml);
            } else {
                for (uint64_t i = tile; i + 1 < ml; i++)
                    FZ_CHECK(inl_sep(in[start + i]), "byte 0x%02x after the last inline arg",
                             in[start + i]);
            }
            FZ_CHECK(resp_req_feed(&p, buf + used, n - used, &u2, &dummy) == RESP_EV_DONE && u2 == 0,
                     "DONE is not sticky (used %zu)", u2);
            fz_log_add(lg, EV_DONE, (int)resp_req_inline(&p), start, ml, na, 0, NULL);
            resp_req_reset(&p);
            tile = 0;
            continue;
        }
        FZ_CHECK(ev == RESP_EV_ERROR, "unknown event %d", ev);
        FZ_CHECK(p.err != NULL && strncmp(p.err, "Protocol error", 14) == 0, "error reason %s",
                 p.err ? p.err : "(null)");
        {
            struct resp_arg dummy;
            size_t u2 = SIZE_MAX;
            FZ_CHECK(resp_req_feed(&p, buf + used, n - used, &u2, &dummy) == RESP_EV_ERROR && u2 == 0,
                     "ERROR is not sticky");
        }
        /* the reason may quote the offending byte from the parser's own buffer */
        fz_log_add(lg, EV_ERROR, p.err == p.errbuf ? p.errbuf[sizeof("Protocol error: expected '$', got '") - 1] : 0,
                   start, pos, ml, 0, p.err == p.errbuf ? NULL : p.err);
        break;
    }
    if (resp_req_msglen(&p) > 0 && p.err == NULL)
        fz_log_add(lg, EV_PARTIAL, 0, 0, resp_req_msglen(&p), resp_req_nargs(&p), 0, NULL);
    fz_feed_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run_modes(data, size, run, NULL);
    return 0;
}
