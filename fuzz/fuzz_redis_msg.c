/* fuzz/fuzz_redis_msg.c: libFuzzer target for the Redis message path: segment chains, planning, fragments and merges. */
#include "fuzz_msg.h"

#include "core/buf.h"
#include "core/common.h"
#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/reader.h"
#include "proto/redis_keyspace.h"
#include "proto/resp.h"

#include <sys/uio.h>

/*
 * What the proxy core does with a client's bytes, without sockets: the input (after one
 * set-up byte) is a client's request stream. It is read into a segment chain of tiny
 * segments (512 bytes or a little more) in PRNG-sized reads, and tokenized with
 * proto_redis by the core's own reader (src/proto/reader.c: messages take their bytes by
 * reference, tokens are located in the chain). Each complete request goes through
 * req_plan, then:
 *  - PLAN_LOCAL / PLAN_ERROR: the reply made on the spot must be well-formed RESP;
 *  - PLAN_SINGLE / PLAN_SAMESRV: the request is forwarded whole (its out must be exactly
 *    the client's bytes) and a synthesised reply passes back through unchanged;
 *  - PLAN_SPLIT: keys are routed with a made-up key -> server map derived from the input;
 *    one fragment per server is built with proto_redis.frag, the parent's input is
 *    dropped as the core does, and each fragment must re-parse as a request with the
 *    command and exactly its keys (and values). A well-formed reply is synthesised for
 *    each fragment (sometimes an error, sometimes a reply of the wrong shape), pipelined
 *    into a server chain in PRNG-sized reads, tokenized as the core does, and merged
 *    with proto_redis.merge. The merged reply must be well-formed and, when every
 *    fragment answered as Redis does, exactly the expected bytes (elements in the
 *    client's key order, the sum, or +OK); otherwise the first bad reply passed through.
 * Every out list is written the way the core writes it (span_iov into a few iovecs) and
 * compared with span_copy. At the end everything is released and the pools must be back
 * to nothing but the scratch segment: no segment and no message may leak.
 */

#define MAX_SRV 6

/* Which lies the synthesised servers tell, as a bit mask: 1 = an integer reply near
 * INT64_MAX to DEL/EXISTS/..., 2 = an MGET array reply of the wrong count. Both are
 * replies no correct Redis gives, yet the proxy must survive them. Build with
 * -DFZ_SERVER_LIES=0 to explore the rest once one of them has been reported. */
#ifndef FZ_SERVER_LIES
#define FZ_SERVER_LIES 3
#endif

struct world {
    const struct proto *pr;
    struct bufpool bp;
    struct msgcache mc;
    struct proto_ctx ctx;
    struct proto_limits lim;
    bool use_lim;
    struct proto_session sess;
    struct fz_rng rng;
    uint64_t salt;           /* of the made-up key -> server map */
    uint32_t nsrv;

    const uint8_t *stream;   /* the client's bytes */
    size_t len;
    struct reader_env env;
    struct reader cl;        /* client side */
    struct reader sv;        /* server side: one upstream carrying every reply */
    struct bytes wire;       /* scratch: a message's out as written */
    struct bytes wire2;

    /* replies the server side still owes, oldest first (the in-flight FIFO) */
    struct fz_server srv;    /* the requests the server side still owes replies to */
    bool closed;             /* the client connection was closed (QUIT, bad request) */
};

/* --------------------------------------------------------------- writing out */

/* What the core would write for m (fuzz_msg.h), left in w->wire. */
static void
write_out(struct world *w, const struct msg *m)
{
    fz_write_out(&w->wire, &w->wire2, m);
}

/* s[0..n) is exactly one well-formed RESP reply; its type and value. */
static void
check_reply(const uint8_t *s, size_t n, char *type, int64_t *ival, uint64_t *nelem)
{
    struct resp_rsp_parser p;
    struct resp_elem el;
    size_t off = 0, used;
    int ev;

    resp_rsp_init(&p);
    *nelem = 0;
    for (;;) {
        ev = resp_rsp_feed(&p, s + off, n - off, &used, &el);
        off += used;
        if (ev == RESP_EV_ARG) {
            (*nelem)++;
            continue;
        }
        break;
    }
    FZ_CHECK(ev == RESP_EV_DONE && off == n, "reply of %zu bytes is not one RESP value (event %d "
             "after %zu bytes: %s): %.*s", n, ev, off, p.err ? p.err : "-", (int)(n < 200 ? n : 200),
             (const char *)s);
    *type = p.type;
    *ival = p.ival;
}

/* ----------------------------------------------------------------- replies */

/* Append one RESP value to b (a reply element for key bytes k[0..kl)). */
static void
synth_value(struct world *w, struct bytes *b, const uint8_t *k, size_t kl)
{
    switch (fz_below(&w->rng, 10)) {
    case 0:
        bytes_fmt(b, "$-1\r\n");
        break;
    case 1:
        bytes_fmt(b, ":%lld\r\n", (long long)fz_below(&w->rng, 1000) - 500);
        break;
    case 2:
        bytes_fmt(b, "*2\r\n+ok\r\n$0\r\n\r\n");
        break;
    case 3:
        bytes_fmt(b, "_\r\n");
        break;
    case 4: {
        /* long enough to run across segments */
        size_t l = 300 + (size_t)fz_below(&w->rng, 900);
        bytes_fmt(b, "$%zu\r\n", l);
        for (size_t i = 0; i < l; i++) {
            uint8_t c = (uint8_t)('a' + (i * 7 + l) % 26);
            bytes_add(b, &c, 1);
        }
        bytes_add(b, "\r\n", 2);
        break;
    }
    default:
        bytes_fmt(b, "$%zu\r\n", kl);
        bytes_add(b, k, kl);
        bytes_add(b, "\r\n", 2);
        break;
    }
}

/* -------------------------------------------------------------- tokenizing */

static void on_request(struct world *w, struct msg *m, uint64_t start);
static void on_reply(void *arg, struct msg *req, struct msg *rsp);
static void scan_index(struct world *w, struct msg *m);

/* The reader's callbacks, as the core's connections have them (src/proxy/conn.c). */
static int
fz_request(void *arg, struct msg *m)
{
    struct world *w = arg;

    on_request(w, m, w->cl.cur_start);
    return w->closed ? KM_ERROR : KM_OK;
}

/* a bad request closes the client */
static int
fz_bad_request(void *arg, const char *why, bool recoverable)
{
    struct world *w = arg;

    FZ_CHECK(why != NULL && !recoverable, "redis request errors close the connection");
    w->closed = true;
    return KM_ERROR;
}

static const struct reader_ops client_ops = { NULL, fz_request, fz_bad_request };

/* The server side answers reqs[0..n) with the bytes p[0..len). */
static void
serve(struct world *w, struct msg *const *reqs, uint32_t n, const uint8_t *p, size_t len)
{
    fz_serve(&w->srv, &w->sv, &w->env, &w->bp, &w->rng, reqs, n, p, len);
}

/* ------------------------------------------------------------ the requests */

/* Where a token's data is in the client stream. */
static uint64_t
tok_data_at(const struct tok *t, uint64_t start)
{
    return start + t->kpos + t->aux;
}

/* The made-up server of a key. */
static uint32_t
route(const struct world *w, const uint8_t *k, size_t kl)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ w->salt;

    for (size_t i = 0; i < kl; i++) {
        h ^= k[i];
        h *= 0x100000001b3ULL;
    }
    return (uint32_t)(h % w->nsrv);
}

/* What the synthesised servers said, and so what the merged reply must be. */
struct plan_state {
    struct bytes elems;      /* MGET: the element for each key, in the client's key order */
    int64_t sum;             /* DEL & co: the true sum */
    bool overflow;           /* the true sum does not fit in int64 */
    bool lied;               /* a fragment answered with an array of the wrong count */
    int first_bad;           /* first fragment (in order) whose reply is not mergeable, or -1 */
    bool first_bad_is_error; /* that reply is an error line (passed through) rather than a wrong shape */
    struct bytes *frag_rsp;  /* [nfrag] the bytes each fragment's reply was */
};

static void
check_whole(struct world *w, struct msg *m, uint64_t start)
{
    /* forwarded whole: out is the client's bytes */
    FZ_CHECK(msg_out_borrow(m, m->raw.b, m->raw.off, m->raw.len) == KM_OK, "borrow failed");
    write_out(w, m);
    FZ_CHECK(w->wire.n == m->raw.len && memcmp(w->wire.p, w->stream + start, w->wire.n) == 0,
             "a request forwarded whole is not the client's bytes");
    msg_out_release(m);
}

/* Send m whole to a server, answer it with a synthesised value and check it comes back as is. */
static void
serve_whole(struct world *w, struct msg *m, uint64_t start)
{
    struct bytes rsp = { 0 };

    check_whole(w, m, start);
    synth_value(w, &rsp, (const uint8_t *)"v", 1);
    serve(w, &m, 1, rsp.p, rsp.n);
    FZ_CHECK(m->rsp != NULL, "no reply paired with the request");
    write_out(w, m->rsp);
    FZ_CHECK(w->wire.n == rsp.n && memcmp(w->wire.p, rsp.p, rsp.n) == 0,
             "a passed-through reply differs from the server's");
    free(rsp.p);
}

static void
split(struct world *w, struct msg *m, uint64_t start)
{
    uint32_t nkeys = (m->key_last - m->key_first) / m->key_step + 1;
    int32_t slot[MAX_SRV];
    uint32_t nfrag = 0;
    uint8_t kbuf[64];

    for (int i = 0; i < MAX_SRV; i++)
        slot[i] = -1;
    FZ_CHECK(msg_split_init(m, KM_MIN(nkeys, MAX_SRV), nkeys) == KM_OK, "malloc");
    for (uint32_t k = 0; k < nkeys; k++) {
        const struct tok *t = &m->tok[m->key_first + k * m->key_step];
        size_t got = msg_tok_copy(t, 0, kbuf, sizeof(kbuf));
        FZ_CHECK(got == KM_MIN(t->len, sizeof(kbuf)), "msg_tok_copy gave %zu of %llu", got,
                 (unsigned long long)t->len);
        FZ_CHECK(memcmp(kbuf, w->stream + tok_data_at(t, start), got) == 0, "key bytes differ");
        uint32_t s = route(w, kbuf, got);
        if (slot[s] < 0)
            slot[s] = (int32_t)nfrag++;
        m->keyfrag[k] = (uint32_t)slot[s];
    }
    if (nfrag == 1) {
        msg_split_free(m);
        m->merge = MERGE_NONE;
        serve_whole(w, m, start);
        return;
    }

    /* the fragments, with their keys grouped, client order within each (as forward.c) */
    uint32_t *keys, *kstart;
    fz_make_frags(m, nfrag, w->pr, &w->ctx, &w->mc, &keys, &kstart);

    /* what each fragment must say: the command, then its keys (with values) */
    uint32_t step = m->key_step;
    uint64_t (*want)[2] = malloc((1 + (size_t)nkeys * step) * nfrag * sizeof(*want));
    FZ_CHECK(want != NULL, "malloc");
    /* expected arguments, taken before the parent's input goes */
    uint64_t (*wp)[2] = want;
    for (uint32_t f = 0; f < nfrag; f++) {
        (*wp)[0] = tok_data_at(&m->tok[0], start);
        (*wp)[1] = m->tok[0].len;
        wp++;
        for (uint32_t i = kstart[f]; i < kstart[f + 1]; i++) {
            for (uint32_t j = 0; j < step; j++) {
                const struct tok *t = &m->tok[m->key_first + keys[i] * step + j];
                (*wp)[0] = tok_data_at(t, start);
                (*wp)[1] = t->len;
                wp++;
            }
        }
    }
    msg_drop_input(m);

    /* each fragment is a well-formed request with exactly its arguments */
    wp = want;
    for (uint32_t f = 0; f < nfrag; f++) {
        struct resp_req_parser rq;
        struct resp_arg a;
        size_t off = 0, used;
        uint32_t nargs = 1 + (kstart[f + 1] - kstart[f]) * step;
        uint32_t seen = 0;
        int ev;

        write_out(w, m->frags[f]);
        resp_req_init(&rq);
        while ((ev = resp_req_feed(&rq, w->wire.p + off, w->wire.n - off, &used, &a)) == RESP_EV_ARG) {
            off += used;
            FZ_CHECK(seen < nargs, "fragment %u has more than %u arguments", f, nargs);
            FZ_CHECK(a.len == (*wp)[1] && memcmp(w->wire.p + a.pos, w->stream + (*wp)[0], a.len) == 0,
                     "fragment %u argument %u differs from the client's", f, seen);
            seen++;
            wp++;
        }
        off += used;
        FZ_CHECK(ev == RESP_EV_DONE && off == w->wire.n && seen == nargs && !resp_req_inline(&rq),
                 "fragment %u: event %d after %zu of %zu bytes, %u of %u arguments", f, ev, off,
                 w->wire.n, seen, nargs);
        /* written: the borrowed spans go at once */
        msg_out_release(m->frags[f]);
    }
    free(want);

    /* the servers answer, in fragment order on one pipelined connection */
    struct plan_state ps;
    memset(&ps, 0, sizeof(ps));
    ps.first_bad = -1;
    ps.frag_rsp = calloc(nfrag, sizeof(*ps.frag_rsp));
    FZ_CHECK(ps.frag_rsp != NULL, "malloc");
    /* MGET elements, in the client's key order */
    struct bytes *kel = calloc(nkeys, sizeof(*kel));
    FZ_CHECK(kel != NULL, "malloc");

    struct bytes all = { 0 };
    for (uint32_t f = 0; f < nfrag; f++) {
        struct bytes *b = &ps.frag_rsp[f];
        uint32_t cnt = kstart[f + 1] - kstart[f];
        uint64_t odd = fz_below(&w->rng, 24);
        bool bad = false;

        if (odd == 0) {
            bytes_fmt(b, "-ERR fragment %u refused\r\n", f);
            bad = true;
        } else if (odd == 1) {
            /* a reply of the wrong shape for the merge */
            if (m->merge == MERGE_ARRAY || m->merge == MERGE_SUM)
                bytes_fmt(b, "+OK\r\n");
            else
                bytes_fmt(b, ":1\r\n");
            bad = true;
        } else if (m->merge == MERGE_ARRAY) {
            /* odd == 2: a server that lies about the count (fewer or more elements) */
            uint32_t n = cnt;
            if (odd == 2 && (FZ_SERVER_LIES & 2) != 0) {
                n = fz_below(&w->rng, 2) ? cnt + 1 : cnt - 1;
                ps.lied = true;
            }
            bytes_fmt(b, "*%u\r\n", n);
            for (uint32_t i = 0; i < n; i++) {
                size_t at = b->n;
                uint32_t key = i < cnt ? keys[kstart[f] + i] : keys[kstart[f]];
                uint8_t kb[16];
                size_t kl = (size_t)fz_below(&w->rng, sizeof(kb));
                for (size_t q = 0; q < kl; q++)
                    kb[q] = (uint8_t)('A' + (key + q) % 26);
                synth_value(w, b, kb, kl);
                if (i < cnt)
                    bytes_add(&kel[key], b->p + at, b->n - at);
            }
        } else if (m->merge == MERGE_SUM) {
            /* Redis counts at most the keys asked; rarely an enormous count */
            int64_t v = (FZ_SERVER_LIES & 1) != 0 && fz_below(&w->rng, 32) == 0
                            ? INT64_MAX - (int64_t)fz_below(&w->rng, 3)
                            : (int64_t)fz_below(&w->rng, cnt + 1);
            bytes_fmt(b, ":%lld\r\n", (long long)v);
            if (__builtin_add_overflow(ps.sum, v, &ps.sum))
                ps.overflow = true;
        } else {
            bytes_fmt(b, "+OK\r\n");
        }
        if (bad && ps.first_bad < 0) {
            ps.first_bad = (int)f;
            ps.first_bad_is_error = odd == 0;
        }
        bytes_add(&all, b->p, b->n);
    }
    for (uint32_t k = 0; k < nkeys; k++) {
        bytes_add(&ps.elems, kel[k].p, kel[k].n);
        free(kel[k].p);
    }
    free(kel);

    serve(w, m->frags, nfrag, all.p, all.n);
    FZ_CHECK(m->rsp != NULL, "no merged reply");

    /* the merged reply */
    char type;
    int64_t ival;
    uint64_t nelem;
    write_out(w, m->rsp);
    check_reply(w->wire.p, w->wire.n, &type, &ival, &nelem);
    if (ps.first_bad >= 0 && !ps.lied && ps.first_bad_is_error) {
        /* the first failing fragment is a server error: it answers for the whole command */
        struct bytes *b = &ps.frag_rsp[ps.first_bad];
        FZ_CHECK(w->wire.n == b->n && memcmp(w->wire.p, b->p, b->n) == 0,
                 "the merge did not pass fragment %d's error through", ps.first_bad);
    } else if (ps.first_bad >= 0 && !ps.lied) {
        /* a reply of the wrong shape: the proxy answers with an error of its own */
        FZ_CHECK(type == '-', "fragment %d's reply of the wrong shape merged as '%c'",
                 ps.first_bad, type);
    } else if (ps.lied) {
        /* an array of the wrong count must not be merged as if it were right: the client
         * may get an error or a reply passed through, never nkeys elements made up of
         * elements the server did not send for those keys */
        if (type == '*' && ival == (int64_t)nkeys && ps.first_bad < 0) {
            bool short_frag = false;
            for (uint32_t f = 0; f < nfrag; f++) {
                struct msg *fr = m->frags[f]->rsp;
                if (fr->type == '*' && fr->ival >= 0 && (uint64_t)fr->ival < kstart[f + 1] - kstart[f])
                    short_frag = true;
            }
            FZ_CHECK(!short_frag, "merged %u elements from a fragment reply with fewer elements than "
                     "keys", nkeys);
        }
    } else if (m->merge == MERGE_ARRAY) {
        char hdr[32];
        int hl = snprintf(hdr, sizeof(hdr), "*%u\r\n", nkeys);
        FZ_CHECK(type == '*' && ival == (int64_t)nkeys && nelem == nkeys, "merged %c%lld with %llu "
                 "elements for %u keys", type, (long long)ival, (unsigned long long)nelem, nkeys);
        FZ_CHECK(w->wire.n == (size_t)hl + ps.elems.n && memcmp(w->wire.p, hdr, (size_t)hl) == 0 &&
                 memcmp(w->wire.p + hl, ps.elems.p, ps.elems.n) == 0,
                 "merged elements are not the servers' elements in key order");
    } else if (m->merge == MERGE_SUM) {
        /* a sum past int64 cannot be right; what the client gets must still be one value */
        FZ_CHECK(ps.overflow || (type == ':' && ival == ps.sum), "merged sum %c%lld, expected %lld", type,
                 (long long)ival, (long long)ps.sum);
    } else {
        FZ_CHECK(type == '+' && w->wire.n == 5 && memcmp(w->wire.p, "+OK\r\n", 5) == 0,
                 "merged MSET reply is not +OK");
    }

    for (uint32_t f = 0; f < nfrag; f++)
        free(ps.frag_rsp[f].p);
    free(ps.frag_rsp);
    free(ps.elems.p);
    free(all.p);
    free(keys);
    free(kstart);
}

static void
on_request(struct world *w, struct msg *m, uint64_t start)
{
    /* the message's bytes and tokens are the client's */
    fz_check_msg(m, w->stream, w->len, start);
    FZ_CHECK(m->ntok > 0, "request without tokens");

    FZ_CHECK(w->pr->req_plan(m, &w->cl.ps, &w->ctx) == KM_OK, "req_plan failed");
    switch (m->plan) {
    case PLAN_LOCAL:
    case PLAN_ERROR: {
        char type;
        int64_t ival;
        uint64_t nelem;
        FZ_CHECK(m->rsp != NULL && m->done, "local answer missing");
        write_out(w, m->rsp);
        check_reply(w->wire.p, w->wire.n, &type, &ival, &nelem);
        FZ_CHECK(m->plan == PLAN_LOCAL || (type == '-' && m->rsp->is_error),
                 "PLAN_ERROR answered with %c", type);
        if (m->quit)
            w->closed = true;
        break;
    }
    case PLAN_DROP:
        FZ_CHECK(m->done, "dropped request not done");
        break;
    case PLAN_SINGLE:
    case PLAN_SAMESRV:
    case PLAN_SPLIT:
        FZ_CHECK(m->key_first >= 1 && m->key_step >= 1 && m->key_first <= m->key_last &&
                 m->key_last < m->ntok && (m->key_last - m->key_first) % m->key_step == 0 &&
                 m->key_last + m->key_step - 1 < m->ntok && m->key_extra < m->ntok,
                 "keys %u..%u by %u (extra %u) in %u tokens", m->key_first, m->key_last,
                 m->key_step, m->key_extra, m->ntok);
        FZ_CHECK(m->rsp == NULL, "forwarded request already answered");
        if (m->plan == PLAN_SPLIT) {
            FZ_CHECK(m->merge == MERGE_ARRAY || m->merge == MERGE_OK || m->merge == MERGE_SUM,
                     "split with merge %u", m->merge);
            split(w, m, start);
        } else {
            serve_whole(w, m, start);
        }
        break;
    case PLAN_ALL:
        /* DBSIZE, FLUSHALL/FLUSHDB with allow_flush: the client's bytes to every server */
        FZ_CHECK(m->rsp == NULL && (m->merge == MERGE_SUM || m->merge == MERGE_OK),
                 "PLAN_ALL with merge %u", m->merge);
        break;
    case PLAN_INDEX:
        FZ_CHECK(m->rsp == NULL, "forwarded request already answered");
        scan_index(w, m);
        break;
    case PLAN_SESSION:
        /* served by proxy/session.c: only an EXECABORT comes answered, with an error */
        FZ_CHECK(m->sop >= SOP_MULTI && m->sop <= SOP_WAIT, "session op %u", m->sop);
        if (m->sop == SOP_EXECABORT)
            FZ_CHECK(m->rsp != NULL && m->rsp->outlen > 0, "EXECABORT without its error");
        else
            FZ_CHECK(m->rsp == NULL, "session op %u already answered", m->sop);
        if (m->sop == SOP_WATCH)
            FZ_CHECK(m->key_first >= 1 && m->key_first <= m->key_last && m->key_last < m->ntok,
                     "WATCH keys %u..%u in %u tokens", m->key_first, m->key_last, m->ntok);
        break;
    case PLAN_PUBSUB:
        FZ_CHECK(m->sop >= SOP_SUBSCRIBE && m->sop <= SOP_PUNSUBSCRIBE, "pub/sub op %u", m->sop);
        FZ_CHECK(m->rsp == NULL, "pub/sub request already answered");
        break;
    default:
        FZ_CHECK(false, "plan %u", m->plan);
    }
    msg_put(&w->mc, m);
}

/* PLAN_INDEX (SCAN): one fragment for server m->server as forward.c makes it; it must be
 * one request of the client's word count. The server answers with a cursor (sometimes
 * one too large for the proxy's cursor), an error, or a reply of another shape; the
 * client's reply must be one RESP value, with the cursor redis_scan_next gives. */
static void
scan_index(struct world *w, struct msg *m)
{
    struct resp_req_parser rq;
    struct resp_arg a;
    struct bytes rsp = { 0 };
    uint64_t nargs = 0, scur, want = 0;
    size_t off = 0, used;
    int ev;

    FZ_CHECK(m->merge == MERGE_SCAN && m->server >= 0 && (uint32_t)m->server < w->nsrv,
             "SCAN to server %d of %u", m->server, w->nsrv);
    FZ_CHECK(msg_split_init(m, 1, 0) == KM_OK, "split init");
    m->frags[0] = msg_get(&w->mc);
    FZ_CHECK(m->frags[0] != NULL, "msg_get");
    m->nfrag = 1;
    m->frags[0]->parent = m;
    FZ_CHECK(w->pr->frag(m->frags[0], m, NULL, 0, &w->ctx) == KM_OK, "frag failed");
    msg_drop_input(m);
    write_out(w, m->frags[0]);
    resp_req_init(&rq);
    while ((ev = resp_req_feed(&rq, w->wire.p + off, w->wire.n - off, &used, &a)) == RESP_EV_ARG) {
        off += used;
        nargs++;
    }
    off += used;
    FZ_CHECK(ev == RESP_EV_DONE && off == w->wire.n && nargs == m->ntok,
             "SCAN fragment is not one request of %u words", m->ntok);

    switch (fz_below(&w->rng, 4)) {
    case 0:
        bytes_fmt(&rsp, "-ERR down\r\n");
        break;
    case 1:
        bytes_fmt(&rsp, ":1\r\n");
        break;
    default:
        scur = fz_below(&w->rng, 3) == 0 ? 0 : fz_rand(&w->rng) >> fz_below(&w->rng, 64);
        bytes_fmt(&rsp, "*2\r\n$%d\r\n%llu\r\n*1\r\n$1\r\na\r\n",
                  snprintf(NULL, 0, "%llu", (unsigned long long)scur), (unsigned long long)scur);
        if (!redis_scan_next((uint32_t)m->server, w->ctx.nservers, scur, &want))
            want = UINT64_MAX;   /* an error reply is owed */
        break;
    }
    serve(w, m->frags, 1, rsp.p, rsp.n);
    FZ_CHECK(m->rsp != NULL, "SCAN not answered");
    write_out(w, m->rsp);
    char type;
    int64_t ival;
    uint64_t nelem;
    check_reply(w->wire.p, w->wire.n, &type, &ival, &nelem);
    if (rsp.p[0] == '*' && want != UINT64_MAX) {
        char head[64];
        int hl = snprintf(head, sizeof(head), "*2\r\n$%d\r\n%llu\r\n",
                          snprintf(NULL, 0, "%llu", (unsigned long long)want), (unsigned long long)want);
        FZ_CHECK(w->wire.n == (size_t)hl + 11 && memcmp(w->wire.p, head, (size_t)hl) == 0,
                 "SCAN reply with the wrong cursor");
    } else {
        FZ_CHECK(type == '-', "SCAN reply '%c' where an error is owed", type);
    }
    free(rsp.p);
}

/* The reply to req came (fuzz_msg.h's server side): as upstream.c on_reply does. */
static void
on_reply(void *arg, struct msg *req, struct msg *rsp)
{
    struct world *w = arg;

    if (req->parent == NULL) {
        /* a whole request's reply goes back as it came (upstream.c on_reply) */
        FZ_CHECK(msg_out_borrow(rsp, rsp->raw.b, rsp->raw.off, rsp->raw.len) == KM_OK, "borrow");
        req->rsp = rsp;
        req->done = true;
        return;
    }
    req->rsp = rsp;
    req->done = true;
    struct msg *parent = req->parent;
    if (parent->merge == MERGE_ARRAY && rsp->type == '*' && rsp->ival >= 0)
        FZ_CHECK(rsp->ntok == (uint64_t)rsp->ival, "array reply with %u elements kept, %lld declared",
                 rsp->ntok, (long long)rsp->ival);
    if (++parent->nfrag_done < parent->nfrag)
        return;
    FZ_CHECK(w->pr->merge(parent, &w->ctx) == KM_OK, "merge failed");
    parent->done = true;
}

/* ------------------------------------------------------------------ driver */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct world *w;
    uint8_t cfg;
    uint32_t segsize;

    if (size < 1)
        return 0;
    w = calloc(1, sizeof(*w));
    FZ_CHECK(w != NULL, "calloc");
    cfg = data[0];
    w->pr = &proto_redis;
    w->stream = data + 1;
    w->len = size - 1;
    fz_rng_seed(&w->rng, data, size, 0x8888);
    segsize = BUF_MIN_SIZE + ((cfg & 3) == 0 ? (uint32_t)fz_below(&w->rng, 512) : 0);
    bufpool_init(&w->bp, segsize, (uint32_t)fz_below(&w->rng, 4));
    msgcache_init(&w->mc, (uint32_t)fz_below(&w->rng, 4));
    w->nsrv = 2 + (uint32_t)((cfg >> 2) % (MAX_SRV - 1));
    w->salt = fz_rand(&w->rng);
    w->ctx.bp = &w->bp;
    w->ctx.mc = &w->mc;
    /* a client's session always: a refused MULTI, a name, AUTH (with a password) */
    w->ctx.sess = &w->sess;
    w->sess.id = 1 + (uint64_t)cfg;
    w->sess.authed = true;
    w->ctx.db = (cfg & 0x10) ? 3 : 0;
    w->ctx.nservers = w->nsrv;
    w->ctx.allow_flush = (cfg & 0x20) != 0;
    if (cfg & 0x80) {
        w->ctx.auth = "pw";
        w->sess.authed = false;
    }
    if ((cfg & 0x60) == 0x60) {
        w->use_lim = true;
        w->lim.max_bulk = fz_below(&w->rng, 64);
        w->lim.max_args = 1 + fz_below(&w->rng, 16);
        w->lim.max_value = 64;
    }
    w->env.pr = w->pr;
    w->env.lim = w->use_lim ? &w->lim : NULL;
    w->env.max_request = w->use_lim ? 64 + fz_below(&w->rng, 4096) : UINT64_MAX;
    w->env.mc = &w->mc;
    reader_init(&w->cl);
    reader_init(&w->sv);
    w->srv.reply = on_reply;
    w->srv.owner = w;
    reader_req_start(&w->cl, &w->env);

    /* the client's reads */
    fz_reader_feed(&w->cl, &w->env, &w->bp, &w->rng, true, &client_ops, w, w->stream, w->len,
                   &w->closed);

    fz_finish(&w->cl, &w->sv, &w->srv, &w->bp, &w->mc);
    proto_session_clear(&w->sess);
    free(w->wire.p);
    free(w->wire2.p);
    free(w);
    return 0;
}
