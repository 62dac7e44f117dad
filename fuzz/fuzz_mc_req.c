/* fuzz/fuzz_mc_req.c: libFuzzer target for the memcached request tokenizer (whole vs chunked, with invariants). */
#include "fuzz_util.h"

#include "proto/mc.h"

/*
 * The input is a stream of memcached requests. It is tokenized whole, in PRNG-sized
 * chunks and byte by byte; after DONE and after a recoverable ERROR the tokenizer is reset
 * and goes on (as the proxy does), after an unrecoverable ERROR the run stops. The three
 * event logs must be identical, and:
 *  - msglen grows by exactly what each call consumed; AGAIN consumes everything;
 *  - a key lies inside its request, is 1..max_key bytes with no space or control byte,
 *    is followed by a space, '\r' or '\n', and keys come in order;
 *  - at DONE the first word is the command's name, the line ends with '\n' within its
 *    bound, and a storage request is its line, vlen bytes and "\r\n";
 *  - a recoverable ERROR consumed the bad request through its '\n' (or its skipped block);
 *  - the binary-protocol refusal comes at a request's first byte, 0x80, consuming nothing;
 *  - DONE and ERROR are sticky and consume nothing.
 */

enum { EV_KEY = 1, EV_DONE, EV_ERROR, EV_PARTIAL };

static void
set_limits(struct mc_req_parser *p, const uint8_t *in, size_t len)
{
    struct fz_rng r;

    fz_rng_seed(&r, in, len, 0x5555);
    if (fz_below(&r, 4) != 0)
        return;
    p->max_key = (uint32_t)(1 + fz_below(&r, 20));
    p->max_value = fz_below(&r, 100);
    p->max_line = (uint32_t)(8 + fz_below(&r, 64));
    p->max_get_line = 8 + fz_below(&r, 128);
}

static bool
key_byte_ok(uint8_t c)
{
    return c > 32 && c != 127;
}

static bool
has_data(enum mc_cmd c)
{
    return c == MC_SET || c == MC_ADD || c == MC_REPLACE || c == MC_APPEND || c == MC_PREPEND ||
           c == MC_CAS || c == MC_MS;
}

static bool
is_retrieval(enum mc_cmd c)
{
    return c == MC_GET || c == MC_GETS || c == MC_GAT || c == MC_GATS;
}

static bool
is_meta(enum mc_cmd c)
{
    return c == MC_MG || c == MC_MS || c == MC_MD || c == MC_MA || c == MC_MN || c == MC_ME;
}

/* The request's first word (after leading spaces) is the name of cmd. */
static bool
first_word_is(const uint8_t *m, uint64_t n, enum mc_cmd cmd)
{
    const char *name = mc_cmd_name(cmd);
    size_t l = strlen(name);
    uint64_t i = 0;

    while (i < n && m[i] == ' ')
        i++;
    return i + l < n && memcmp(m + i, name, l) == 0 &&
           (m[i + l] == ' ' || m[i + l] == '\r' || m[i + l] == '\n');
}

static void
run(const uint8_t *in, size_t len, enum fz_mode mode, struct fz_log *lg, void *ctx)
{
    (void)ctx;
    struct mc_req_parser p;
    struct fz_feed f;
    bool more;
    uint64_t last_key_end = 0;

    mc_req_init(&p);
    set_limits(&p, in, len);
    fz_feed_init(&f, in, len, mode, 0x6666);
    more = fz_feed_next(&f);

    for (;;) {
        size_t n, used = SIZE_MAX;
        const uint8_t *buf = fz_feed_ptr(&f, &n);
        struct mc_tok key;
        uint64_t before = mc_req_msglen(&p);
        uint32_t nkeys_before = mc_req_nkeys(&p);
        int ev;

        memset(&key, 0xa5, sizeof(key));
        ev = mc_req_feed(&p, buf, n, &used, &key);

        uint64_t ml = mc_req_msglen(&p);
        uint64_t pos = fz_feed_consumed(&f, used, n, ml);
        FZ_CHECK(ml == before + used, "msglen %llu after %llu + %zu", (unsigned long long)ml,
                 (unsigned long long)before, used);
        uint64_t start = pos - ml;
        const uint8_t *m = in + start;

        if (ev == MC_EV_AGAIN) {
            if (!fz_feed_again(&f, used, n, &more))
                break;
            continue;
        }
        FZ_CHECK(!p.swallowing, "swallowing at an event");
        if (ev == MC_EV_KEY) {
            FZ_CHECK(p.cmd != MC_CMD_UNKNOWN, "key of an unknown command");
            FZ_CHECK(mc_req_nkeys(&p) == nkeys_before + 1, "nkeys %u after %u", mc_req_nkeys(&p),
                     nkeys_before);
            FZ_CHECK(key.len >= 1 && key.len <= p.max_key, "key of %u bytes", key.len);
            FZ_CHECK(key.pos + key.len < ml, "key [%llu+%u] not before msglen %llu",
                     (unsigned long long)key.pos, key.len, (unsigned long long)ml);
            FZ_CHECK(nkeys_before == 0 || key.pos > last_key_end, "keys out of order");
            for (uint32_t i = 0; i < key.len; i++)
                FZ_CHECK(key_byte_ok(m[key.pos + i]), "key byte 0x%02x", m[key.pos + i]);
            FZ_CHECK(key.pos > 0 && m[key.pos - 1] == ' ', "key not after a space");
            uint8_t after = m[key.pos + key.len];
            FZ_CHECK(after == ' ' || after == '\r' || after == '\n', "key followed by 0x%02x", after);
            last_key_end = key.pos + key.len;
            fz_log_add(lg, EV_KEY, (int)p.cmd, start, key.pos, key.len, 0, NULL);
            continue;
        }
        if (ev == MC_EV_DONE) {
            struct mc_tok dummy;
            size_t u2 = SIZE_MAX;
            uint64_t lim = is_retrieval(p.cmd) ? (p.max_get_line > p.max_line ? p.max_get_line : p.max_line)
                                               : p.max_line;

            FZ_CHECK(p.cmd != MC_CMD_UNKNOWN && p.cmd < MC_CMD_COUNT, "DONE for command %d", p.cmd);
            FZ_CHECK(p.line_len >= 2 && p.line_len <= ml && m[p.line_len - 1] == '\n',
                     "line of %llu bytes in a request of %llu", (unsigned long long)p.line_len,
                     (unsigned long long)ml);
            FZ_CHECK(p.line_len <= lim, "line of %llu bytes over its bound %llu",
                     (unsigned long long)p.line_len, (unsigned long long)lim);
            FZ_CHECK(first_word_is(m, p.line_len, p.cmd), "request does not start with '%s'",
                     mc_cmd_name(p.cmd));
            if (has_data(p.cmd)) {
                FZ_CHECK(p.vlen <= p.max_value, "accepted a block of %llu", (unsigned long long)p.vlen);
                FZ_CHECK(ml == p.line_len + p.vlen + 2 && m[ml - 2] == '\r' && m[ml - 1] == '\n',
                         "storage request of %llu bytes: line %llu + data %llu + 2",
                         (unsigned long long)ml, (unsigned long long)p.line_len,
                         (unsigned long long)p.vlen);
            } else {
                FZ_CHECK(ml == p.line_len, "request of %llu bytes, line of %llu",
                         (unsigned long long)ml, (unsigned long long)p.line_len);
            }
            if (is_retrieval(p.cmd))
                FZ_CHECK(mc_req_nkeys(&p) >= 1, "retrieval without a key");
            else if (p.cmd != MC_VERSION && p.cmd != MC_QUIT && p.cmd != MC_MN &&
                     p.cmd != MC_VERBOSITY && p.cmd != MC_FLUSH_ALL && p.cmd != MC_STATS)
                FZ_CHECK(mc_req_nkeys(&p) == 1, "%s with %u keys", mc_cmd_name(p.cmd), mc_req_nkeys(&p));
            else
                FZ_CHECK(mc_req_nkeys(&p) == 0, "%s with %u keys", mc_cmd_name(p.cmd), mc_req_nkeys(&p));
            if (is_meta(p.cmd))
                FZ_CHECK(!p.noreply, "noreply on a meta command");
            else
                FZ_CHECK(!p.quiet && !p.base64, "meta flags on a classic command");
            FZ_CHECK(mc_req_feed(&p, buf + used, n - used, &u2, &dummy) == MC_EV_DONE && u2 == 0,
                     "DONE is not sticky");
            fz_log_add(lg, EV_DONE, (int)p.cmd | p.noreply << 8 | p.quiet << 9 | p.base64 << 10,
                       start, ml, mc_req_nkeys(&p), p.vlen, NULL);
            mc_req_reset(&p);
            continue;
        }
        FZ_CHECK(ev == MC_EV_ERROR, "unknown event %d", ev);
        if (p.err == mc_err_binary)
            FZ_CHECK(!p.recoverable && ml == 0 && n > used && buf[used] == MC_BINARY_MAGIC,
                     "binary protocol refused after %llu bytes, at byte 0x%02x",
                     (unsigned long long)ml, n > used ? buf[used] : 0);
        FZ_CHECK(p.err == mc_err_binary || (p.err != NULL && (strncmp(p.err, "ERROR", 5) == 0 ||
                                   strncmp(p.err, "CLIENT_ERROR ", 13) == 0 ||
                                   strncmp(p.err, "SERVER_ERROR ", 13) == 0)),
                 "error reply '%s'", p.err ? p.err : "(null)");
        {
            struct mc_tok dummy;
            size_t u2 = SIZE_MAX;
            FZ_CHECK(mc_req_feed(&p, buf + used, n - used, &u2, &dummy) == MC_EV_ERROR && u2 == 0,
                     "ERROR is not sticky");
        }
        fz_log_add(lg, EV_ERROR, p.recoverable, start, ml, 0, 0, p.err);
        if (!p.recoverable)
            break;
        FZ_CHECK(ml > 0 && (m[ml - 1] == '\n' || ml == p.line_len + p.vlen + 2),
                 "recoverable error after %llu bytes not at a line end or block end",
                 (unsigned long long)ml);
        mc_req_reset(&p);
    }
    if (mc_req_msglen(&p) > 0 && p.err == NULL)
        fz_log_add(lg, EV_PARTIAL, 0, 0, mc_req_msglen(&p), mc_req_nkeys(&p), 0, NULL);
    fz_feed_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run_modes(data, size, run, NULL);
    return 0;
}
