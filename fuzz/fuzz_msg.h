/* fuzz/fuzz_msg.h: what the message-path targets (fuzz_redis_msg, fuzz_mc_msg) share: growing byte strings, writing a message's out as the core does, feeding a reader in PRNG-sized reads. */
#ifndef KM_FUZZ_MSG_H
#define KM_FUZZ_MSG_H

#include "fuzz_util.h"

#include "core/buf.h"
#include "core/common.h"
#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/reader.h"

#include <sys/uio.h>

/* A byte string that grows. */
struct bytes {
    uint8_t *p;
    size_t n, cap;
};

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (q == NULL)
            abort();
        b->p = q;
        b->cap = cap;
    }
    if (n > 0 && p != NULL)
        memcpy(b->p + b->n, p, n);   /* p NULL: just reserve */
    b->n += n;
}

static void
bytes_fmt(struct bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
bytes_fmt(struct bytes *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    FZ_CHECK(n > 0 && (size_t)n < sizeof(tmp), "format overflow");
    bytes_add(b, tmp, (size_t)n);
}

/* What the core would write for m: its out spans gathered by span_iov into at most four
 * iovecs at a time (as a writev), checked against span_copy (written to ref). Left in
 * wire. */
static void
fz_write_out(struct bytes *wire, struct bytes *ref, const struct msg *m)
{
    struct iovec iov[4];
    int niov = 0;
    uint64_t total = 0;

    wire->n = 0;
    ref->n = 0;
    for (uint32_t i = 0; i < m->nout; i++) {
        const struct span *s = &m->out[i];
        uint64_t skip = 0;

        FZ_CHECK(s->b != NULL || s->len == 0, "out span %u without a segment", i);
        /* span_copy reference */
        size_t at = ref->n;
        bytes_add(ref, NULL, (size_t)s->len);
        FZ_CHECK(span_copy(s, 0, ref->p + at, (size_t)s->len) == s->len, "span_copy short");
        total += s->len;
        while (skip < s->len) {
            uint64_t got = span_iov(s, skip, iov, (int)KM_ARRAY_LEN(iov), &niov);
            skip += got;
            if (skip < s->len || niov == (int)KM_ARRAY_LEN(iov)) {
                for (int k = 0; k < niov; k++)
                    bytes_add(wire, iov[k].iov_base, iov[k].iov_len);
                niov = 0;
            }
        }
    }
    for (int k = 0; k < niov; k++)
        bytes_add(wire, iov[k].iov_base, iov[k].iov_len);
    FZ_CHECK(total == m->outlen, "outlen %llu, spans hold %llu", (unsigned long long)m->outlen,
             (unsigned long long)total);
    FZ_CHECK(wire->n == ref->n && (wire->n == 0 || memcmp(wire->p, ref->p, wire->n) == 0),
             "span_iov gives %zu bytes, span_copy %zu (or different ones)", wire->n, ref->n);
}

/* Read p[0..n) into r's chain in PRNG-sized reads (segments of bp), tokenizing after each
 * read as conn_read does, and letting an idle side's segments go. Stops early once *stop
 * is set (the connection was closed). */
static void
fz_reader_feed(struct reader *r, const struct reader_env *env, struct bufpool *bp,
               struct fz_rng *rng, bool is_req, const struct reader_ops *ops, void *arg,
               const uint8_t *p, size_t n, const bool *stop)
{
    size_t off = 0;

    while (off < n && !*stop) {
        size_t room;
        uint8_t *dst = chain_space(&r->in, bp, &room);
        FZ_CHECK(dst != NULL && room > 0, "chain_space gave no room");
        size_t k = fz_chunk_len(rng, n - off);
        if (k == 0)
            k = 1;
        if (k > room)
            k = room;
        memcpy(dst, p + off, k);
        chain_commit(&r->in, k);
        off += k;
        (void)reader_parse(r, env, is_req, ops, arg);
        if (!*stop && reader_idle(r, env, is_req) && r->in.head != NULL)
            chain_release(&r->in);
    }
}

/* Message m, which started at offset start of the client's stream[0..len), holds exactly
 * those bytes, and each of its tokens the bytes at its place (kpos + aux into m). */
static void
fz_check_msg(const struct msg *m, const uint8_t *stream, size_t len, uint64_t start)
{
    uint8_t tmp[256];

    FZ_CHECK(start + m->raw.len <= len, "message past the input");
    for (uint64_t off = 0; off < m->raw.len; off += sizeof(tmp)) {
        size_t got = span_copy(&m->raw, off, tmp, sizeof(tmp));
        FZ_CHECK(got == KM_MIN(sizeof(tmp), m->raw.len - off), "span_copy gave %zu", got);
        FZ_CHECK(memcmp(tmp, stream + start + off, got) == 0, "raw bytes differ at %llu",
                 (unsigned long long)(start + off));
    }
    for (uint32_t i = 0; i < m->ntok; i++) {
        const struct tok *t = &m->tok[i];
        FZ_CHECK(t->kpos + t->aux + t->len <= m->raw.len, "token %u past its message", i);
        size_t got = msg_tok_copy(t, 0, tmp, sizeof(tmp));
        FZ_CHECK(got == KM_MIN(t->len, sizeof(tmp)) &&
                 memcmp(tmp, stream + start + t->kpos + t->aux, got) == 0, "token %u bytes differ", i);
    }
}

/* The fragments of split request m as forward.c makes them, m->keyfrag[k] being key k's
 * fragment (of nfrag): the key numbers grouped by fragment, in the client's order within
 * each, fragment f's at (*keys)[(*kstart)[f] .. (*kstart)[f + 1]) (both malloc'd: the
 * caller frees them), and each fragment made by pr->frag. */
static void
fz_make_frags(struct msg *m, uint32_t nfrag, const struct proto *pr, const struct proto_ctx *ctx,
              struct msgcache *mc, uint32_t **keys, uint32_t **kstart)
{
    uint32_t nkeys = (m->key_last - m->key_first) / m->key_step + 1;
    uint32_t *k = malloc(nkeys * sizeof(*k));
    uint32_t *ks = calloc(nfrag + 1, sizeof(*ks));
    uint32_t *fill = calloc(nfrag, sizeof(*fill));

    FZ_CHECK(k && ks && fill, "malloc");
    for (uint32_t i = 0; i < nkeys; i++)
        ks[m->keyfrag[i] + 1]++;
    for (uint32_t f = 0; f < nfrag; f++)
        ks[f + 1] += ks[f];
    for (uint32_t i = 0; i < nkeys; i++) {
        uint32_t f = m->keyfrag[i];
        k[ks[f] + fill[f]++] = i;
    }
    free(fill);
    for (uint32_t f = 0; f < nfrag; f++) {
        struct msg *fr = msg_get(mc);
        FZ_CHECK(fr != NULL, "msg_get");
        m->frags[f] = fr;
        m->nfrag = f + 1;
        fr->parent = m;
        fr->cmd = m->cmd;
        FZ_CHECK(pr->frag(fr, m, k + ks[f], ks[f + 1] - ks[f], ctx) == KM_OK, "frag failed");
    }
    *keys = k;
    *kstart = ks;
}

#define FZ_SERVER_MAX 64

/* The server side of a message-path target: one connection carrying the replies to the
 * requests in q, oldest first (the in-flight FIFO); each reply goes to reply(). */
struct fz_server {
    struct msg *q[FZ_SERVER_MAX];
    uint32_t head, n;
    void (*reply)(void *owner, struct msg *req, struct msg *rsp);
    void *owner;
};

/* The reader's callbacks, as a server connection has them (src/proxy/upstream.c). */
static struct msg *
fz_server_answers(void *arg)
{
    struct fz_server *s = arg;

    FZ_CHECK(s->n > 0, "the server side has bytes with no request in flight");
    return s->q[s->head];
}

static int
fz_server_reply(void *arg, struct msg *rsp)
{
    struct fz_server *s = arg;

    FZ_CHECK(s->n > 0, "reply without a request");
    struct msg *req = s->q[s->head++];
    s->n--;
    s->reply(s->owner, req, rsp);
    return KM_OK;
}

/* the synthesised replies are all well-formed */
static int
fz_server_bad(void *arg, const char *why, bool recoverable)
{
    FZ_CHECK(false, "a synthesised reply did not parse: %s", why);
    return KM_ERROR;
}

static const struct reader_ops fz_server_ops = { fz_server_answers, fz_server_reply, fz_server_bad };

/* The server side answers reqs[0..n) with the bytes p[0..len), read into sv in PRNG-sized
 * reads; every one of them must get its reply. */
static void
fz_serve(struct fz_server *s, struct reader *sv, const struct reader_env *env, struct bufpool *bp,
         struct fz_rng *rng, struct msg *const *reqs, uint32_t n, const uint8_t *p, size_t len)
{
    static const bool open = false;

    FZ_CHECK(n <= FZ_SERVER_MAX, "%u requests in flight", n);
    memcpy(s->q, reqs, n * sizeof(*reqs));
    s->head = 0;
    s->n = n;
    fz_reader_feed(sv, env, bp, rng, false, &fz_server_ops, s, p, len, &open);
    FZ_CHECK(s->n == 0, "replies missing: %u in flight", s->n);
}

/* The connection goes: both sides release what they hold (the server side must owe
 * nothing), then everything must be back: no message live, no segment held but the
 * scratch one, and it only by the pool. Then the pool and the cache are destroyed. */
static void
fz_finish(struct reader *cl, struct reader *sv, const struct fz_server *srv, struct bufpool *bp,
          struct msgcache *mc)
{
    reader_release(cl, mc);
    FZ_CHECK(sv->cur == NULL && srv->n == 0, "server side not idle");
    reader_release(sv, mc);
    FZ_CHECK(mc->nlive == 0, "%llu messages leaked", (unsigned long long)mc->nlive);
    FZ_CHECK(bp->nlive - bp->nfree == (bp->scratch != NULL ? 1u : 0u),
             "segments: %llu live, %u free, scratch %s", (unsigned long long)bp->nlive, bp->nfree,
             bp->scratch != NULL ? "held" : "none");
    FZ_CHECK(bp->scratch == NULL || bp->scratch->refs == 1, "scratch segment has %u references",
             bp->scratch->refs);
    bufpool_destroy(bp);
    FZ_CHECK(bp->nlive == 0, "%llu segments left after bufpool_destroy",
             (unsigned long long)bp->nlive);
    msgcache_destroy(mc);
}

#endif
