/* fuzz/fuzz_mc_rsp.c: libFuzzer target for the memcached reply tokenizer (whole vs chunked, with invariants). */
#include "fuzz_util.h"

#include "proto/mc.h"

/*
 * The first input byte names the command the replies answer (mc_rsp_init takes it); the
 * rest is a stream of replies to that command, as one server connection delivers them.
 * It is tokenized whole, in PRNG-sized chunks and byte by byte; after each DONE the
 * tokenizer is started again for the same command, after an ERROR the run stops. The
 * three event logs must be identical, and:
 *  - msglen grows by exactly what each call consumed; AGAIN consumes everything;
 *  - VALUE items tile the reply from its start: "VALUE " line, its key inside it (1..max_key
 *    bytes, no space or control byte), then vlen data bytes and "\r\n";
 *  - at DONE the reply ends with '\n' and its last line (end_pos) is one line; a retrieval
 *    ends with END right after its items, or with an error line; a VA reply is its line,
 *    vlen bytes and "\r\n"; nitems counts the items reported;
 *  - DONE and ERROR are sticky and consume nothing.
 */

enum { EV_ITEM = 1, EV_DONE, EV_ERROR, EV_PARTIAL };

static bool
key_byte_ok(uint8_t c)
{
    return c > 32 && c != 127;
}

/* Offset just past the first '\n' in s[0..n), or 0 when there is none. */
static uint64_t
line_end(const uint8_t *s, uint64_t n)
{
    const uint8_t *nl = memchr(s, '\n', (size_t)n);
    return nl == NULL ? 0 : (uint64_t)(nl - s) + 1;
}

/* s[0..n) starts with the word w, after spaces (the tokenizer skips them, as memcached does). */
static bool
starts_with(const uint8_t *s, uint64_t n, const char *w)
{
    size_t l = strlen(w);

    while (n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    return n >= l && memcmp(s, w, l) == 0;
}

static void
run(const uint8_t *in, size_t len, enum fz_mode mode, struct fz_log *lg, void *ctx)
{
    enum mc_cmd cmd = *(const enum mc_cmd *)ctx;
    struct mc_rsp_parser p;
    struct fz_feed f;
    bool more;
    uint64_t tile = 0, nitems = 0;

    mc_rsp_init(&p, cmd);
    fz_feed_init(&f, in, len, mode, 0x7777);
    more = fz_feed_next(&f);

    for (;;) {
        size_t n, used = SIZE_MAX;
        const uint8_t *buf = fz_feed_ptr(&f, &n);
        struct mc_elem el;
        uint64_t before = mc_rsp_msglen(&p);
        int ev;

        memset(&el, 0xa5, sizeof(el));
        ev = mc_rsp_feed(&p, buf, n, &used, &el);

        uint64_t ml = mc_rsp_msglen(&p);
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
        if (ev == MC_EV_KEY) {
            FZ_CHECK(cmd == MC_GET || cmd == MC_GETS || cmd == MC_GAT || cmd == MC_GATS,
                     "VALUE item in a reply to %s", mc_cmd_name(cmd));
            FZ_CHECK(el.pos == tile, "item at %llu, previous ended at %llu",
                     (unsigned long long)el.pos, (unsigned long long)tile);
            FZ_CHECK(el.pos + el.len <= ml, "item past the reply");
            const uint8_t *e = m + el.pos;
            uint64_t ll = line_end(e, el.len);
            FZ_CHECK(starts_with(e, el.len, "VALUE ") && ll > 0, "item is not a VALUE line");
            FZ_CHECK(el.len == ll + p.vlen + 2 && e[el.len - 2] == '\r' && e[el.len - 1] == '\n',
                     "item of %llu bytes: line %llu + data %llu + 2", (unsigned long long)el.len,
                     (unsigned long long)ll, (unsigned long long)p.vlen);
            FZ_CHECK(el.key.len >= 1 && el.key.len <= p.max_key, "key of %u bytes", el.key.len);
            FZ_CHECK(el.key.pos >= el.pos + 6 && el.key.pos + el.key.len < el.pos + ll,
                     "key [%llu+%u] outside its line", (unsigned long long)el.key.pos, el.key.len);
            FZ_CHECK(m[el.key.pos - 1] == ' ' && m[el.key.pos + el.key.len] == ' ',
                     "key not between spaces");
            for (uint32_t i = 0; i < el.key.len; i++)
                FZ_CHECK(key_byte_ok(m[el.key.pos + i]), "key byte 0x%02x", m[el.key.pos + i]);
            tile = el.pos + el.len;
            nitems++;
            FZ_CHECK(p.nitems == nitems, "nitems %u, %llu reported", p.nitems,
                     (unsigned long long)nitems);
            fz_log_add(lg, EV_ITEM, 0, start, el.pos, el.len, el.key.pos << 32 | el.key.len, NULL);
            continue;
        }
        if (ev == MC_EV_DONE) {
            struct mc_elem dummy;
            size_t u2 = SIZE_MAX;

            FZ_CHECK(ml > 0 && m[ml - 1] == '\n', "reply does not end with LF");
            FZ_CHECK(p.kind != MC_RSP_NONE && p.word_id > MC_RW_NONE && p.word_id < MC_RW_COUNT,
                     "DONE with kind %d word %d", p.kind, p.word_id);
            FZ_CHECK(p.nitems == nitems, "nitems %u, %llu reported", p.nitems, (unsigned long long)nitems);
            FZ_CHECK(p.is_error == (p.word_id == MC_RW_ERROR || p.word_id == MC_RW_CLIENT_ERROR ||
                                    p.word_id == MC_RW_SERVER_ERROR), "is_error %d for word %d",
                     p.is_error, p.word_id);
            if (p.kind == MC_RSP_META_VALUE) {
                FZ_CHECK(p.word_id == MC_RW_VA && starts_with(m, ml, "VA "), "meta value without VA");
                FZ_CHECK(p.data_pos == line_end(m, ml) && p.data_pos + p.vlen + 2 == ml &&
                         m[ml - 2] == '\r', "VA reply of %llu: data at %llu, %llu bytes",
                         (unsigned long long)ml, (unsigned long long)p.data_pos,
                         (unsigned long long)p.vlen);
            } else {
                FZ_CHECK(p.end_pos < ml && p.end_pos + line_end(m + p.end_pos, ml - p.end_pos) == ml,
                         "last line at %llu is not one line up to %llu", (unsigned long long)p.end_pos,
                         (unsigned long long)ml);
                /* STAT lines are no items: a stats reply may end (END or an error) anywhere */
                FZ_CHECK(cmd == MC_STATS || p.end_pos == tile, "last line at %llu, items end at %llu",
                         (unsigned long long)p.end_pos, (unsigned long long)tile);
            }
            if (p.kind == MC_RSP_VALUE_END || p.kind == MC_RSP_STATS)
                FZ_CHECK(p.word_id == MC_RW_END && starts_with(m + p.end_pos, ml - p.end_pos, "END"),
                         "retrieval or stats reply not ending with END");
            if (p.kind == MC_RSP_STATS)
                FZ_CHECK(cmd == MC_STATS, "stats reply to %s", mc_cmd_name(cmd));
            FZ_CHECK(mc_rsp_feed(&p, buf + used, n - used, &u2, &dummy) == MC_EV_DONE && u2 == 0,
                     "DONE is not sticky");
            fz_log_add(lg, EV_DONE, p.kind | p.word_id << 8 | p.is_error << 16, start, ml, nitems,
                       p.end_pos, NULL);
            mc_rsp_init(&p, cmd);
            tile = nitems = 0;
            continue;
        }
        FZ_CHECK(ev == MC_EV_ERROR, "unknown event %d", ev);
        FZ_CHECK(p.err != NULL, "error without a reason");
        {
            struct mc_elem dummy;
            size_t u2 = SIZE_MAX;
            FZ_CHECK(mc_rsp_feed(&p, buf + used, n - used, &u2, &dummy) == MC_EV_ERROR && u2 == 0,
                     "ERROR is not sticky");
        }
        fz_log_add(lg, EV_ERROR, 0, start, ml, 0, 0, p.err);
        break;
    }
    if (mc_rsp_msglen(&p) > 0 && p.err == NULL)
        fz_log_add(lg, EV_PARTIAL, 0, 0, mc_rsp_msglen(&p), nitems, 0, NULL);
    fz_feed_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum mc_cmd cmd;

    if (size < 1)
        return 0;
    cmd = (enum mc_cmd)(data[0] % MC_CMD_COUNT);
    fz_run_modes(data + 1, size - 1, run, &cmd);
    return 0;
}
