/* fuzz/fuzz_resp_rsp.c: libFuzzer target for the RESP2/RESP3 reply tokenizer (whole vs chunked, with invariants). */
#include "fuzz_util.h"

#include "proto/resp.h"

/*
 * The input is a stream of replies, as a server connection delivers them. It is tokenized
 * whole, in PRNG-sized chunks and byte by byte; after each DONE the tokenizer is reset,
 * after an ERROR the run stops. The three event logs must be identical, and:
 *  - msglen grows by exactly what each call consumed; AGAIN consumes everything;
 *  - an element lies inside its reply, starts with its type byte (or a '|' attribute),
 *    ends with CRLF, and the elements of an aggregate tile its body back to back;
 *  - at DONE the element count is the aggregate's count ('%' counts pairs), a reply ends
 *    with CRLF, a bulk's length is its header's, an integer is the digits it shows;
 *  - DONE and ERROR are sticky and consume nothing.
 */

enum { EV_ELEM = 1, EV_DONE, EV_ERROR, EV_PARTIAL };

static void
set_limits(struct resp_rsp_parser *p, const uint8_t *in, size_t len)
{
    struct fz_rng r;

    fz_rng_seed(&r, in, len, 0x3333);
    if (fz_below(&r, 4) == 0)
        p->max_depth = (uint32_t)(1 + fz_below(&r, 4));
}

/* An independent reading of a RESP integer line body s[0..n): '-'? digits, within int64. */
static bool
ref_int(const uint8_t *s, size_t n, int64_t *v)
{
    bool neg = false;
    __int128 acc = 0;
    size_t i = 0;

    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        acc = acc * 10 + (s[i] - '0');
        if (acc > ((__int128)1 << 64))
            return false;
    }
    if (neg)
        acc = -acc;
    if (acc < INT64_MIN || acc > INT64_MAX)
        return false;
    *v = (int64_t)acc;
    return true;
}

/* Offset of the first "\r\n" in s[0..n), or n. */
static size_t
find_crlf(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n')
            return i;
    }
    return n;
}

static bool
is_agg(char t)
{
    return t == '*' || t == '~' || t == '>' || t == '%';
}

static void
run(const uint8_t *in, size_t len, enum fz_mode mode, struct fz_log *lg, void *ctx)
{
    (void)ctx;
    struct resp_rsp_parser p;
    struct fz_feed f;
    bool more;
    uint64_t nelem = 0, tile = 0;

    resp_rsp_init(&p);
    set_limits(&p, in, len);
    fz_feed_init(&f, in, len, mode, 0x4444);
    more = fz_feed_next(&f);

    for (;;) {
        size_t n, used = SIZE_MAX;
        const uint8_t *buf = fz_feed_ptr(&f, &n);
        struct resp_elem el;
        uint64_t before = resp_rsp_msglen(&p);
        int ev;

        memset(&el, 0xa5, sizeof(el));
        ev = resp_rsp_feed(&p, buf, n, &used, &el);

        uint64_t ml = resp_rsp_msglen(&p);
        uint64_t pos = fz_feed_consumed(&f, used, n, ml);
        FZ_CHECK(ml == before + used, "msglen %llu after %llu + %zu", (unsigned long long)ml,
                 (unsigned long long)before, used);
        uint64_t start = pos - ml;
        const uint8_t *m = in + start;

        if (ev == RESP_EV_AGAIN) {
            if (!fz_feed_again(&f, used, n, &more))
                break;
            continue;
        }
        if (ev == RESP_EV_ARG) {
            FZ_CHECK(el.len >= 3 && el.pos + el.len <= ml, "element [%llu+%llu] in reply of %llu",
                     (unsigned long long)el.pos, (unsigned long long)el.len, (unsigned long long)ml);
            const uint8_t *e = m + el.pos;
            FZ_CHECK(e[0] == (uint8_t)el.type || e[0] == '|', "element starts with 0x%02x, type %c",
                     e[0], el.type);
            FZ_CHECK(e[el.len - 2] == '\r' && e[el.len - 1] == '\n', "element does not end with CRLF");
            if (nelem == 0)
                FZ_CHECK(el.pos >= 4 && m[el.pos - 2] == '\r' && m[el.pos - 1] == '\n',
                         "first element at %llu not after a header line", (unsigned long long)el.pos);
            else
                FZ_CHECK(el.pos == tile, "element at %llu, previous ended at %llu",
                         (unsigned long long)el.pos, (unsigned long long)tile);
            if (e[0] == '$' && el.ival >= 0) {
                /* servers write "$5", the tokenizer also takes "$05": measure the header */
                size_t hl = find_crlf(e, (size_t)el.len) + 2;
                FZ_CHECK(el.len == hl + (uint64_t)el.ival + 2, "bulk element of %llu bytes",
                         (unsigned long long)el.len);
            }
            if (e[0] == ':') {
                int64_t v;
                FZ_CHECK(ref_int(e + 1, el.len - 3, &v) && v == el.ival, "integer element %lld",
                         (long long)el.ival);
            }
            tile = el.pos + el.len;
            nelem++;
            fz_log_add(lg, EV_ELEM, el.type, start, el.pos, el.len, (uint64_t)el.ival, NULL);
            continue;
        }
        if (ev == RESP_EV_DONE) {
            struct resp_elem dummy;
            size_t u2 = SIZE_MAX;

            FZ_CHECK(ml >= 3 && m[ml - 2] == '\r' && m[ml - 1] == '\n', "reply does not end with CRLF");
            if (is_agg(p.type)) {
                uint64_t want = p.ival < 0 ? 0 : (uint64_t)p.ival * (p.type == '%' ? 2 : 1);
                FZ_CHECK(p.type != '%' || p.ival >= 0, "null map");
                FZ_CHECK(nelem == want, "%c%lld reply with %llu elements", p.type, (long long)p.ival,
                         (unsigned long long)nelem);
                if (nelem > 0)
                    FZ_CHECK(tile == ml, "elements end at %llu, reply at %llu",
                             (unsigned long long)tile, (unsigned long long)ml);
            } else {
                FZ_CHECK(nelem == 0, "%llu elements in a %c reply", (unsigned long long)nelem, p.type);
            }
            if (m[0] != '|') {
                size_t line = find_crlf(m, (size_t)ml);
                int64_t v;
                FZ_CHECK(m[0] == (uint8_t)p.type, "reply starts with 0x%02x, type %c", m[0], p.type);
                switch (p.type) {
                case '+': case '-': case '_': case ',': case '#': case '(':
                    FZ_CHECK(line + 2 == ml && memchr(m, '\n', line) == NULL,
                             "line reply of %llu bytes, line of %zu", (unsigned long long)ml, line);
                    break;
                case ':':
                    FZ_CHECK(line + 2 == ml && ref_int(m + 1, line - 1, &v) && v == p.ival,
                             "integer reply %lld", (long long)p.ival);
                    break;
                case '$': case '!': case '=':
                    FZ_CHECK(ref_int(m + 1, line - 1, &v) && v == p.ival, "blob length %lld",
                             (long long)p.ival);
                    FZ_CHECK(ml == (p.ival < 0 ? line + 2 : line + 2 + (uint64_t)p.ival + 2),
                             "blob reply of %llu bytes, length %lld", (unsigned long long)ml,
                             (long long)p.ival);
                    break;
                default:
                    FZ_CHECK(is_agg(p.type), "unknown type %c", p.type);
                    FZ_CHECK(ref_int(m + 1, line - 1, &v) && v == p.ival, "count %lld",
                             (long long)p.ival);
                    break;
                }
            }
            FZ_CHECK(resp_rsp_feed(&p, buf + used, n - used, &u2, &dummy) == RESP_EV_DONE && u2 == 0,
                     "DONE is not sticky");
            fz_log_add(lg, EV_DONE, p.type, start, ml, nelem, (uint64_t)p.ival, NULL);
            resp_rsp_reset(&p);
            nelem = tile = 0;
            continue;
        }
        FZ_CHECK(ev == RESP_EV_ERROR, "unknown event %d", ev);
        FZ_CHECK(p.err != NULL && strncmp(p.err, "Protocol error", 14) == 0, "error reason %s",
                 p.err ? p.err : "(null)");
        {
            struct resp_elem dummy;
            size_t u2 = SIZE_MAX;
            FZ_CHECK(resp_rsp_feed(&p, buf + used, n - used, &u2, &dummy) == RESP_EV_ERROR && u2 == 0,
                     "ERROR is not sticky");
        }
        fz_log_add(lg, EV_ERROR, 0, start, pos, ml, 0, p.err);
        break;
    }
    if (resp_rsp_msglen(&p) > 0 && p.err == NULL)
        fz_log_add(lg, EV_PARTIAL, 0, 0, resp_rsp_msglen(&p), nelem, 0, NULL);
    fz_feed_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run_modes(data, size, run, NULL);
    return 0;
}
