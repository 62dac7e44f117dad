/* fuzz/fuzz_mc_msg.c: libFuzzer target for the memcached message path: plans, fragments, merges, flush_all to every server, stats and the counters. */
#include "fuzz_msg.h"

#include "core/buf.h"
#include "core/common.h"
#include "proto/mc.h"
#include "proto/memcache_admin.h"
#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/reader.h"

/*
 * What the proxy core does with a memcached client's bytes, without sockets, as
 * fuzz_redis_msg does for Redis. The input (after one set-up byte) is a client's request
 * stream, read into a chain of tiny segments in PRNG-sized reads and tokenized with
 * proto_memcache by the core's reader. Each complete request goes through req_plan, then:
 *  - PLAN_LOCAL / PLAN_ERROR (quit, mn, verbosity, stats, refused requests): the reply
 *    made on the spot is empty or exactly one well-formed memcached reply (RESET aside);
 *    an error plan answers an error line;
 *  - PLAN_SINGLE: what goes out is the client's bytes (and "mn" after a quiet request); a
 *    server reply is synthesised, read back through a server-side reader, and must reach
 *    the client as the server sent it (a quiet request's without its MN); the proxy's
 *    hit and miss counters (rsp_count) move by what the reply shows;
 *  - PLAN_SPLIT (multi-key get/gets/gat/gats): keys routed by a made-up map; each
 *    fragment must re-tokenize as the same command with exactly its keys, in order; the
 *    servers answer with the VALUE items of the keys they hold (a key is held or not,
 *    whatever fragment asks), sometimes with an error; the merge must give the items in
 *    the client's key order and one END, or the first error line;
 *  - PLAN_ALL (flush_all): one fragment per server, each exactly the client's bytes; the
 *    servers say OK or an error, or fail (the proxy's own error); the merge is OK exactly
 *    when every server said OK, else one SERVER_ERROR line that names every failed server,
 *    in order; with noreply nothing comes back and nothing is owed.
 * A rejected request gets its reason as a line, or nothing (noreply, and the binary
 * protocol, whose connection closes). At the end every message and segment must be back.
 */

#define MAX_SRV 6

struct world {
    struct bufpool bp;
    struct msgcache mc;
    struct proto_ctx ctx;
    struct proto_counts counts;
    struct proto_limits lim;
    struct fz_rng rng;
    uint64_t salt;           /* of the made-up key -> server map and of which keys exist */
    uint32_t nsrv;

    const uint8_t *stream;   /* the client's bytes */
    size_t len;
    struct reader_env env;
    struct reader cl;        /* client side */
    struct reader sv;        /* server side: one connection carrying every reply */
    struct bytes wire, wire2;

    struct fz_server srv;    /* the requests the server side still owes replies to */
    bool closed;             /* the client connection was closed (quit, framing lost) */
};

static const struct proto *const P = &proto_memcache;

/* ------------------------------------------------------------ the proxy's part */

static void
fake_self(const void *arg, struct proto_self *out)
{
    const struct world *w = arg;

    memset(out, 0, sizeof(*out));
    out->pid = 1;
    out->now_s = 1800000000;
    out->workers = 1;
    out->nservers = w->nsrv;
    out->nlive = w->nsrv;
    out->pool = "fuzz";
    proto_counts_add(&out->counts, &w->counts);
}

static const char *
fake_name(const void *arg, uint32_t idx)
{
    static const char *const names[MAX_SRV] = { "s0", "s1:11212", "s2", "[::1]:3", "s4", "s5" };
    (void)arg;
    return idx < MAX_SRV ? names[idx] : NULL;
}

/* -------------------------------------------------------------- checking replies */

/* s[0..n) is exactly one reply to a request cmd; the tokenizer's results in *out. */
static void
check_reply(enum mc_cmd cmd, const uint8_t *s, size_t n, struct mc_rsp_parser *out)
{
    struct mc_elem el;
    size_t off = 0, used;
    int ev;

    mc_rsp_init(out, cmd);
    do {
        ev = mc_rsp_feed(out, s + off, n - off, &used, &el);
        off += used;
    } while (ev == MC_EV_KEY);
    FZ_CHECK(ev == MC_EV_DONE && off == n, "%zu bytes are not one reply to %s (event %d after "
             "%zu: %s): %.*s", n, mc_cmd_name(cmd), ev, off, out->err ? out->err : "-",
             (int)(n < 200 ? n : 200), (const char *)s);
}

/* ------------------------------------------------------------------ the servers */

/* A hash of key k[0..kl) for use u (0: its server, 1: whether it is held). */
static uint64_t
key_hash(const struct world *w, const uint8_t *k, size_t kl, uint64_t u)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ w->salt ^ (u * 0x9e3779b97f4a7c15ULL);

    for (size_t i = 0; i < kl; i++) {
        h ^= k[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Whether the servers hold key k[0..kl) (the same answer for every fragment asking). */
static bool
held(const struct world *w, const uint8_t *k, size_t kl)
{
    return (key_hash(w, k, kl, 1) >> 7) % 3 != 0;
}

/* The made-up server of a key. */
static uint32_t
route(const struct world *w, const uint8_t *k, size_t kl)
{
    return (uint32_t)(key_hash(w, k, kl, 0) % w->nsrv);
}

/* The bytes of token t (at most 250: memcached keys). */
static size_t
tok_bytes(const struct tok *t, uint8_t *buf)
{
    size_t got = msg_tok_copy(t, 0, buf, MC_MAX_KEY);
    FZ_CHECK(got == t->len && got <= MC_MAX_KEY, "key token of %llu bytes", (unsigned long long)t->len);
    return got;
}

/* The VALUE item a server holding key k sends (gets/gats with a cas unique). */
static void
synth_item(struct bytes *b, enum mc_cmd cmd, const uint8_t *k, size_t kl)
{
    size_t dl = kl % 7;

    bytes_add(b, "VALUE ", 6);
    bytes_add(b, k, kl);
    bytes_fmt(b, " %zu %zu", kl, dl);
    if (cmd == MC_GETS || cmd == MC_GATS)
        bytes_fmt(b, " %zu", kl * 31);
    bytes_add(b, "\r\n", 2);
    /* data that holds protocol words and line ends */
    bytes_add(b, "\r\nEND\r\n", dl);
    bytes_add(b, "\r\n", 2);
}

/* The server side answers reqs[0..n) with the bytes in all. */
static void
serve(struct world *w, struct msg *const *reqs, uint32_t n, const struct bytes *all)
{
    fz_serve(&w->srv, &w->sv, &w->env, &w->bp, &w->rng, reqs, n, all->p, all->n);
}

/* The reply to req came (fuzz_msg.h's server side): as upstream.c on_reply does. */
static void
on_reply(void *arg, struct msg *req, struct msg *rsp)
{
    struct world *w = arg;

    if (req->parent == NULL) {
        P->rsp_count(&w->counts, req, &w->sv.ps);
        FZ_CHECK(msg_out_borrow(rsp, rsp->raw.b, rsp->raw.off, rsp->raw.len) == KM_OK, "borrow");
    } else {
        req->parent->nfrag_done++;
    }
    req->rsp = rsp;
    req->done = true;
}

/* ------------------------------------------------------------------ the requests */

/* What goes to the server for m: the client's rl bytes from stream offset start, and "mn"
 * after them for a quiet meta request. */
static void
check_whole(struct world *w, const struct msg *m, uint64_t start, size_t rl, bool then_mn)
{
    fz_write_out(&w->wire, &w->wire2, m);
    FZ_CHECK(w->wire.n == rl + (then_mn ? 4 : 0) && memcmp(w->wire.p, w->stream + start, rl) == 0 &&
             (!then_mn || memcmp(w->wire.p + rl, "mn\r\n", 4) == 0),
             "a request sent whole is not the client's bytes%s", then_mn ? " and mn" : "");
}

/* The counters of hits and misses moved by exactly what the reply showed. */
static void
check_found(const struct world *w, const struct proto_counts *before, enum mc_cmd cmd, uint64_t hits,
            uint64_t misses)
{
    bool touch = cmd == MC_GAT || cmd == MC_GATS || cmd == MC_TOUCH;
    uint64_t h = touch ? ctr_get(&w->counts.touch_hits) - ctr_get(&before->touch_hits)
                       : ctr_get(&w->counts.get_hits) - ctr_get(&before->get_hits);
    uint64_t m = touch ? ctr_get(&w->counts.touch_misses) - ctr_get(&before->touch_misses)
                       : ctr_get(&w->counts.get_misses) - ctr_get(&before->get_misses);

    FZ_CHECK(h == hits && m == misses, "%s counted %llu hits, %llu misses; expected %llu, %llu",
             mc_cmd_name(cmd), (unsigned long long)h, (unsigned long long)m,
             (unsigned long long)hits, (unsigned long long)misses);
}

/* A single-server request: sent whole, a synthesised reply passed back as it came. */
static void
serve_single(struct world *w, struct msg *m, uint64_t start)
{
    enum mc_cmd cmd = MEMC_CMD(m->cmd);
    bool quiet = (m->cmd & MEMC_QUIET) != 0;
    struct bytes body = { 0 }, all = { 0 };
    struct proto_counts before;
    uint64_t hits = 0, misses = 0;
    uint8_t kb[MC_MAX_KEY];

    FZ_CHECK(m->key_first == 0 && m->key_last < m->ntok && m->key_step == 1, "keys %u..%u by %u of %u",
             m->key_first, m->key_last, m->key_step, m->ntok);
    if (m->nout == 0)
        FZ_CHECK(msg_out_borrow(m, m->raw.b, m->raw.off, m->raw.len) == KM_OK, "borrow");
    check_whole(w, m, start, (size_t)m->raw.len, quiet);
    size_t kl = tok_bytes(&m->tok[0], kb);
    bool has = held(w, kb, kl);
    bool err = fz_below(&w->rng, 12) == 0;

    switch (cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        /* a multi-get whose keys all live on one server comes here too */
        for (uint32_t k = m->key_first; k <= m->key_last; k++) {
            size_t l = tok_bytes(&m->tok[k], kb);
            if (held(w, kb, l)) {
                synth_item(&body, cmd, kb, l);
                hits++;
            } else {
                misses++;
            }
        }
        /* an error may end it after some items */
        bytes_fmt(&body, err ? "SERVER_ERROR busy\r\n" : "END\r\n");
        break;
    case MC_MG:
        if (has)
            bytes_fmt(&body, fz_below(&w->rng, 2) ? "VA 2 f1\r\nab\r\n" : "HD\r\n");
        else if (!quiet)
            bytes_fmt(&body, "EN\r\n");
        hits = has;
        misses = !has;
        break;
    case MC_TOUCH:
        bytes_fmt(&body, has ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
        hits = has;
        misses = !has;
        break;
    case MC_INCR:
    case MC_DECR:
        bytes_fmt(&body, has ? "42\r\n" : "NOT_FOUND\r\n");
        break;
    case MC_DELETE:
        bytes_fmt(&body, has ? "DELETED\r\n" : "NOT_FOUND\r\n");
        break;
    case MC_VERSION:
        bytes_fmt(&body, "VERSION 1.6.18\r\n");
        break;
    case MC_MS:
    case MC_MD:
    case MC_MA:
        if (!quiet || !has)
            bytes_fmt(&body, has ? "HD\r\n" : cmd == MC_MS ? "NS\r\n" : "NF\r\n");
        break;
    case MC_ME:
        bytes_fmt(&body, "EN\r\n");
        break;
    default:
        bytes_fmt(&body, has ? "STORED\r\n" : "NOT_STORED\r\n");
        break;
    }
    if (err) {
        if (cmd != MC_GET && cmd != MC_GETS && cmd != MC_GAT && cmd != MC_GATS) {
            body.n = 0;
            bytes_fmt(&body, "SERVER_ERROR busy\r\n");
        }
        hits = misses = 0;   /* an error counts nothing */
    }
    bytes_add(&all, body.p, body.n);
    if (quiet)
        bytes_add(&all, "MN\r\n", 4);

    /* written: the input goes (upstream.c), the key range stays */
    msg_out_release(m);
    msg_drop_input(m);
    before = w->counts;
    serve(w, &m, 1, &all);
    FZ_CHECK(m->rsp != NULL, "no reply paired with the request");
    fz_write_out(&w->wire, &w->wire2, m->rsp);
    FZ_CHECK(w->wire.n == body.n && (body.n == 0 || memcmp(w->wire.p, body.p, body.n) == 0),
             "the client does not get the server's reply as sent");
    check_found(w, &before, cmd, hits, misses);
    free(body.p);
    free(all.p);
}

/* A multi-key retrieval over several servers: fragments, replies, merge. */
static void
serve_split(struct world *w, struct msg *m, uint64_t start)
{
    enum mc_cmd cmd = MEMC_CMD(m->cmd);
    uint32_t nkeys = m->key_last - m->key_first + 1;
    int32_t slot[MAX_SRV];
    uint32_t nfrag = 0;
    uint8_t kb[MC_MAX_KEY];

    FZ_CHECK(m->merge == MERGE_VALUES && m->key_first == 0 && m->key_step == 1 && m->key_last < m->ntok,
             "split %s: merge %u, keys %u..%u by %u", mc_cmd_name(cmd), m->merge, m->key_first,
             m->key_last, m->key_step);
    for (int i = 0; i < MAX_SRV; i++)
        slot[i] = -1;
    FZ_CHECK(msg_split_init(m, KM_MIN(nkeys, w->nsrv), nkeys) == KM_OK, "malloc");
    for (uint32_t k = 0; k < nkeys; k++) {
        uint32_t s = route(w, kb, tok_bytes(&m->tok[k], kb));
        if (slot[s] < 0)
            slot[s] = (int32_t)nfrag++;
        m->keyfrag[k] = (uint32_t)slot[s];
    }
    if (nfrag == 1) {
        /* every key on one server: the request goes whole (forward.c) */
        msg_split_free(m);
        m->merge = MERGE_NONE;
        serve_single(w, m, start);
        return;
    }

    /* the fragments, with their keys grouped, client order within each (as forward.c) */
    uint32_t *kbuf, *kstart, *keys[MAX_SRV], nk[MAX_SRV];
    fz_make_frags(m, nfrag, P, &w->ctx, &w->mc, &kbuf, &kstart);
    for (uint32_t f = 0; f < nfrag; f++) {
        keys[f] = kbuf + kstart[f];
        nk[f] = kstart[f + 1] - kstart[f];
    }
    msg_drop_input(m);   /* kept: the merge matches items to the keys */

    /* each fragment is the command with exactly its keys, and what its server answers */
    struct bytes all = { 0 }, want = { 0 };
    int first_err = -1;
    for (uint32_t f = 0; f < nfrag; f++) {
        struct mc_req_parser rq;
        struct mc_tok kt;
        size_t off = 0, used;
        uint32_t seen = 0;
        int ev;

        fz_write_out(&w->wire, &w->wire2, m->frags[f]);
        mc_req_init(&rq);
        while ((ev = mc_req_feed(&rq, w->wire.p + off, w->wire.n - off, &used, &kt)) == MC_EV_KEY) {
            off += used;
            FZ_CHECK(seen < nk[f], "fragment %u has more than %u keys", f, nk[f]);
            const struct tok *t = &m->tok[keys[f][seen]];
            size_t l = tok_bytes(t, kb);
            FZ_CHECK(kt.len == l && memcmp(w->wire.p + kt.pos, kb, l) == 0,
                     "fragment %u key %u differs from the client's", f, seen);
            seen++;
        }
        off += used;
        FZ_CHECK(ev == MC_EV_DONE && off == w->wire.n && seen == nk[f] && rq.cmd == cmd,
                 "fragment %u: event %d after %zu of %zu bytes, %u of %u keys, %s", f, ev, off,
                 w->wire.n, seen, nk[f], mc_cmd_name(rq.cmd));
        msg_out_release(m->frags[f]);

        bool err = fz_below(&w->rng, 16) == 0;
        for (uint32_t i = 0; i < nk[f]; i++) {
            size_t l = tok_bytes(&m->tok[keys[f][i]], kb);
            if (held(w, kb, l))
                synth_item(&all, cmd, kb, l);
        }
        if (err && first_err < 0)
            first_err = (int)f;
        bytes_fmt(&all, err ? "SERVER_ERROR fragment %u\r\n" : "END\r\n", f);
    }
    /* the merged reply that is owed */
    uint64_t hits = 0;
    if (first_err >= 0) {
        bytes_fmt(&want, "SERVER_ERROR fragment %d\r\n", first_err);
    } else {
        for (uint32_t k = 0; k < nkeys; k++) {
            size_t l = tok_bytes(&m->tok[k], kb);
            if (held(w, kb, l)) {
                synth_item(&want, cmd, kb, l);
                hits++;
            }
        }
        bytes_fmt(&want, "END\r\n");
    }

    struct proto_counts before = w->counts;
    serve(w, m->frags, nfrag, &all);
    FZ_CHECK(m->nfrag_done == nfrag, "%u of %u fragments answered", m->nfrag_done, nfrag);
    FZ_CHECK(P->merge(m, &w->ctx) == KM_OK, "merge failed");
    fz_write_out(&w->wire, &w->wire2, m->rsp);
    FZ_CHECK(w->wire.n == want.n && memcmp(w->wire.p, want.p, want.n) == 0,
             "merged %s reply differs from the items in key order (%zu bytes, %zu owed)",
             mc_cmd_name(cmd), w->wire.n, want.n);
    /* the merge counts into the context's counters, when there are */
    bool counted = w->ctx.counts != NULL && first_err < 0;
    check_found(w, &before, cmd, counted ? hits : 0, counted ? nkeys - hits : 0);
    free(kbuf);
    free(kstart);
    free(all.p);
    free(want.p);
}

/* Add server name's failure for why to the list a flush_all error line must hold. */
static void
failed(struct bytes *names, const char *name, const char *why)
{
    const char *lead = names->n > 0 ? "; server " : " failed on server ";

    bytes_add(names, lead, strlen(lead));
    bytes_add(names, name, strlen(name));
    bytes_add(names, ": ", 2);
    bytes_add(names, why, strlen(why));
}

/* flush_all: to every server, the client's bytes; merged as all OK. */
static void
serve_all(struct world *w, struct msg *m, uint64_t start)
{
    struct bytes all = { 0 }, names = { 0 };
    struct msg *served[MAX_SRV];
    uint32_t n = w->nsrv, nserved = 0;
    size_t rl = (size_t)m->raw.len;

    FZ_CHECK(m->merge == MERGE_OK && MEMC_CMD(m->cmd) == MC_FLUSH_ALL, "PLAN_ALL for %s, merge %u",
             mc_cmd_name(MEMC_CMD(m->cmd)), m->merge);
    /* as forward.c does */
    FZ_CHECK(msg_split_all(m, n, &w->mc) == KM_OK, "msg_split_all");
    msg_drop_input(m);
    for (uint32_t i = 0; i < n; i++) {
        struct msg *fr = m->frags[i];
        FZ_CHECK(fr->server == (int32_t)i && fr->parent == m && fr->noreply == m->noreply,
                 "fragment %u of flush_all", i);
        check_whole(w, fr, start, rl, false);
        msg_out_release(fr);
        if (m->noreply) {
            m->nfrag_done++;   /* done once written */
            continue;
        }
        const char *name = w->ctx.server_name != NULL ? w->ctx.server_name(w->ctx.self_arg, i) : NULL;
        char num[16];
        if (name == NULL) {
            snprintf(num, sizeof(num), "#%u", i);
            name = num;
        }
        switch (fz_below(&w->rng, 5)) {
        case 0:
            /* the server failed: the proxy's own error (forward_fail) */
            fr->rsp = msg_get(&w->mc);
            FZ_CHECK(fr->rsp != NULL && P->error(fr->rsp, NULL, "Connection refused", &w->ctx) == KM_OK,
                     "error");
            m->nfrag_done++;
            failed(&names, name, "Connection refused");
            break;
        case 1:
            bytes_fmt(&all, "CLIENT_ERROR flush_all not allowed\r\n");
            failed(&names, name, "CLIENT_ERROR flush_all not allowed");
            served[nserved++] = fr;
            break;
        default:
            bytes_fmt(&all, "OK\r\n");
            served[nserved++] = fr;
            break;
        }
    }
    if (nserved > 0)
        serve(w, served, nserved, &all);
    FZ_CHECK(m->nfrag_done == n, "%u of %u fragments answered", m->nfrag_done, n);
    FZ_CHECK(P->merge(m, &w->ctx) == KM_OK, "merge failed");
    fz_write_out(&w->wire, &w->wire2, m->rsp);
    if (names.n == 0) {
        FZ_CHECK(w->wire.n == 4 && memcmp(w->wire.p, "OK\r\n", 4) == 0 && !m->rsp->is_error,
                 "flush_all merged as %.*s, every server said OK", (int)KM_MIN(w->wire.n, 200u),
                 (const char *)w->wire.p);
    } else {
        struct mc_rsp_parser rs;
        size_t cut = KM_MIN(names.n, (size_t)900);   /* a long line is cut, with "..." */
        check_reply(MC_FLUSH_ALL, w->wire.p, w->wire.n, &rs);
        FZ_CHECK(rs.is_error && m->rsp->is_error && w->wire.n > 22 + cut &&
                 memcmp(w->wire.p, "SERVER_ERROR flush_all", 22) == 0 &&
                 memcmp(w->wire.p + 22, names.p, cut) == 0,
                 "flush_all merged as '%.*s', owed 'SERVER_ERROR flush_all%.*s'",
                 (int)KM_MIN(w->wire.n, 300u), (const char *)w->wire.p, (int)KM_MIN(names.n, 300u),
                 (const char *)names.p);
        for (size_t i = 0; i + 2 < w->wire.n; i++)
            FZ_CHECK(w->wire.p[i] != '\r' && w->wire.p[i] != '\n', "line end inside the error line");
    }
    free(all.p);
    free(names.p);
}

static void
on_request(struct world *w, struct msg *m, uint64_t start)
{
    /* the message's bytes and keys are the client's */
    fz_check_msg(m, w->stream, w->len, start);

    FZ_CHECK(P->req_plan(m, &w->cl.ps, &w->ctx) == KM_OK, "req_plan failed");
    switch (m->plan) {
    case PLAN_LOCAL:
    case PLAN_ERROR: {
        FZ_CHECK(m->rsp != NULL && m->done, "local answer missing");
        fz_write_out(&w->wire, &w->wire2, m->rsp);
        if (w->wire.n > 0 && !(w->wire.n == 7 && memcmp(w->wire.p, "RESET\r\n", 7) == 0)) {
            struct mc_rsp_parser rs;
            check_reply(MEMC_CMD(m->cmd), w->wire.p, w->wire.n, &rs);
            FZ_CHECK(rs.is_error == (m->plan == PLAN_ERROR) && m->rsp->is_error == rs.is_error,
                     "plan %u answered %s", m->plan, rs.is_error ? "an error" : "a success");
        }
        if (m->quit)
            w->closed = true;
        break;
    }
    case PLAN_DROP:
        FZ_CHECK(m->done, "dropped request not done");
        break;
    case PLAN_SINGLE:
        FZ_CHECK(m->rsp == NULL, "forwarded request already answered");
        if (m->noreply) {
            /* done once written: nothing comes back */
            if (m->nout == 0)
                FZ_CHECK(msg_out_borrow(m, m->raw.b, m->raw.off, m->raw.len) == KM_OK, "borrow");
            check_whole(w, m, start, (size_t)m->raw.len, false);
        } else {
            serve_single(w, m, start);
        }
        break;
    case PLAN_SPLIT:
        FZ_CHECK(m->rsp == NULL && !m->noreply, "split request answered or noreply");
        serve_split(w, m, start);
        break;
    case PLAN_ALL:
        FZ_CHECK(m->rsp == NULL, "flush_all already answered");
        serve_all(w, m, start);
        break;
    default:
        FZ_CHECK(false, "plan %u", m->plan);
    }
    msg_put(&w->mc, m);
}

static int
fz_request(void *arg, struct msg *m)
{
    struct world *w = arg;

    on_request(w, m, w->cl.cur_start);
    return w->closed ? KM_ERROR : KM_OK;
}

/* A rejected request: its reason as a line, or nothing at all. */
static int
fz_bad_request(void *arg, const char *why, bool recoverable)
{
    struct world *w = arg;
    struct msg *r = msg_get(&w->mc);

    FZ_CHECK(r != NULL && P->bad_request(r, why, &w->ctx) == KM_OK, "bad_request failed");
    fz_write_out(&w->wire, &w->wire2, r);
    if (strcmp(why, mc_err_binary) == 0) {
        FZ_CHECK(!recoverable && w->wire.n == 0, "binary protocol answered with %zu bytes", w->wire.n);
    } else if (why[0] == '\0') {
        FZ_CHECK(recoverable && w->wire.n == 0, "a silent refusal wrote %zu bytes", w->wire.n);
    } else {
        struct mc_rsp_parser rs;
        check_reply(MC_CMD_UNKNOWN, w->wire.p, w->wire.n, &rs);
        FZ_CHECK(rs.is_error, "a refusal that is no error line");
    }
    msg_put(&w->mc, r);
    if (!recoverable) {
        w->closed = true;
        return KM_ERROR;
    }
    return KM_OK;
}

static const struct reader_ops client_ops = { NULL, fz_request, fz_bad_request };

/* ------------------------------------------------------------------------- driver */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct world *w;
    uint8_t cfg;

    if (size < 1)
        return 0;
    w = calloc(1, sizeof(*w));
    FZ_CHECK(w != NULL, "calloc");
    cfg = data[0];
    w->stream = data + 1;
    w->len = size - 1;
    fz_rng_seed(&w->rng, data, size, 0x9999);
    bufpool_init(&w->bp, BUF_MIN_SIZE + ((cfg & 3) == 0 ? (uint32_t)fz_below(&w->rng, 512) : 0),
                 (uint32_t)fz_below(&w->rng, 4));
    msgcache_init(&w->mc, (uint32_t)fz_below(&w->rng, 4));
    w->nsrv = 1 + (uint32_t)((cfg >> 2) % MAX_SRV);
    w->salt = fz_rand(&w->rng);
    w->ctx.bp = &w->bp;
    w->ctx.mc = &w->mc;
    if (cfg & 0x20)
        w->ctx.counts = &w->counts;
    if (cfg & 0x40) {
        w->ctx.self = fake_self;
        w->ctx.self_arg = w;
    }
    if (cfg & 0x80)
        w->ctx.server_name = fake_name;
    w->lim.max_value = (cfg & 0x60) == 0x60 ? 64 : MC_MAX_VALUE;
    w->env.pr = P;
    w->env.lim = &w->lim;
    w->env.max_request = UINT64_MAX;
    w->env.mc = &w->mc;
    reader_init(&w->cl);
    reader_init(&w->sv);
    w->srv.reply = on_reply;
    w->srv.owner = w;
    reader_req_start(&w->cl, &w->env);

    fz_reader_feed(&w->cl, &w->env, &w->bp, &w->rng, true, &client_ops, w, w->stream, w->len, &w->closed);

    fz_finish(&w->cl, &w->sv, &w->srv, &w->bp, &w->mc);
    free(w->wire.p);
    free(w->wire2.p);
    free(w);
    return 0;
}
