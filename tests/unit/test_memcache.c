/* tests/unit/test_memcache.c: the memcached protocol table (proto_memcache): plans, fragments, merges, quiet replies, error replies, over inputs cut into tiny segments. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/common.h"
#include "proto/proto.h"

/*
 * The harness plays the core's part as src/proxy/conn.c describes it: input bytes are
 * cut into segments holding `seg` bytes each (1 to 3 here, so that every token and span
 * runs across segment boundaries), fed to the tokenizer segment by segment, tokens are
 * located in the segments, and at DONE the message takes its raw span. Expected bytes are
 * written by hand from the memcached protocol (protocol.txt of memcached 1.6): what a
 * single memcached would answer the client's request. At the end of every test all
 * segments must be back (no reference leaked or dropped twice).
 */

struct rig {
    struct bufpool bp;
    struct msgcache mc;
    struct proto_ctx ctx;
    struct buf *chain;       /* the input segments of the last parse (the chain's refs) */
};

static const struct proto *P = &proto_memcache;

static int
rig_setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    bufpool_init(&r->bp, 4096, 64);
    msgcache_init(&r->mc, 64);
    r->ctx.bp = &r->bp;
    r->ctx.mc = &r->mc;
    *state = r;
    return 0;
}

static void
chain_drop(struct rig *r)
{
    while (r->chain != NULL) {
        struct buf *n = r->chain->next;
        buf_unref(r->chain);
        r->chain = n;
    }
}

static int
rig_teardown(void **state)
{
    struct rig *r = *state;
    chain_drop(r);
    assert_int_equal(r->mc.nlive, 0);
    msgcache_destroy(&r->mc);
    bufpool_destroy(&r->bp);
    assert_int_equal(r->bp.nlive, 0);
    free(r);
    return 0;
}

/* Segments holding `seg` bytes each of in[0..n), linked; the rig holds one ref on each. */
static struct buf *
make_chain(struct rig *r, const char *in, size_t n, size_t seg)
{
    struct buf *head = NULL, *tail = NULL;
    chain_drop(r);
    for (size_t at = 0; at < n; at += seg) {
        struct buf *b = buf_get(&r->bp);
        assert_non_null(b);
        b->len = (uint32_t)(n - at < seg ? n - at : seg);
        memcpy(b->data, in + at, b->len);
        if (tail != NULL)
            tail->next = b;
        else
            head = b;
        tail = b;
    }
    r->chain = head;
    return head;
}

/* The segment and offset of stream offset abs. */
static void
locate(struct buf *head, uint64_t abs, struct buf **b, uint32_t *off)
{
    struct buf *x = head;
    while (abs >= x->len && x->next != NULL) {
        abs -= x->len;
        x = x->next;
    }
    *b = x;
    *off = (uint32_t)abs;
}

/* Parse one message from the start of in (request or reply) as the core does. For a reply,
 * req is the request it answers and want tells whether to keep its items. Returns the
 * message (raw held, tokens located, rsp_done applied to replies), or NULL on PEV_ERROR. */
static struct msg *
parse(struct rig *r, bool is_req, const struct msg *req, bool want, union parser *ps,
      const char *in, size_t n, size_t seg)
{
    struct buf *head = make_chain(r, in, n, seg);
    struct msg *m = msg_get(&r->mc);
    assert_non_null(m);
    if (is_req)
        P->req_init(ps);
    else
        P->rsp_init(ps, req, want);

    for (struct buf *b = head; b != NULL; b = b->next) {
        size_t at = 0;
        bool more = true;
        while (at < b->len || more) {
            struct ptok t;
            size_t used = 0;
            int ev = is_req ? P->req_feed(ps, b->data + at, b->len - at, &used, &t)
                            : P->rsp_feed(ps, b->data + at, b->len - at, &used, &t);
            at += used;
            more = ev == PEV_TOKEN;
            if (ev == PEV_AGAIN)
                break;
            if (ev == PEV_ERROR) {
                msg_put(&r->mc, m);
                return NULL;
            }
            if (ev == PEV_TOKEN) {
                if (is_req || want) {
                    struct tok tk = { NULL, 0, t.aux, t.len, is_req ? t.pos : t.kpos, t.klen, t.type };
                    locate(head, t.pos, &tk.b, &tk.off);
                    assert_int_equal(msg_tok_push(m, &tk), 0);
                }
                continue;
            }
            /* DONE */
            uint64_t len = is_req ? P->req_len(ps) : P->rsp_len(ps);
            m->raw.b = head;
            m->raw.off = 0;
            m->raw.len = len;
            span_hold(&m->raw);
            if (!is_req)
                P->rsp_done(m, ps);
            return m;
        }
    }
    fail_msg("input ended inside a message: %s", in);
    return NULL;
}

static struct msg *
parse_req(struct rig *r, union parser *ps, const char *in, size_t seg)
{
    struct msg *m = parse(r, true, NULL, false, ps, in, strlen(in), seg);
    assert_non_null(m);
    return m;
}

static struct msg *
parse_rsp(struct rig *r, const struct msg *req, bool want, const char *in, size_t seg)
{
    union parser ps;
    struct msg *m = parse(r, false, req, want, &ps, in, strlen(in), seg);
    assert_non_null(m);
    return m;
}

/* The bytes of a list of spans, NUL-terminated (static buffer). */
static const char *
spans_text(const struct span *s, uint32_t n)
{
    static char out[8192];
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_true(at + s[i].len < sizeof(out));
        at += span_copy(&s[i], 0, out + at, (size_t)s[i].len);
    }
    out[at] = '\0';
    return out;
}

static const char *
out_text(const struct msg *m)
{
    return spans_text(m->out, m->nout);
}

static const char *
tok_text(const struct msg *m, uint32_t i)
{
    static char out[300];
    size_t n = msg_tok_copy(&m->tok[i], 0, out, sizeof(out) - 1);
    out[n] = '\0';
    return out;
}

/* ---- plans ------------------------------------------------------------------------ */

struct plan_case {
    const char *in;
    uint8_t plan;
    uint8_t merge;
    const char *keys;        /* the keys, space separated */
    bool noreply;
    bool quit;
    const char *out;         /* what the request's out holds after planning ("" when nothing) */
    const char *reply;       /* PLAN_LOCAL / PLAN_ERROR: the reply bytes */
};

static const struct plan_case plan_cases[] = {
    { "get a\r\n", PLAN_SINGLE, MERGE_NONE, "a", false, false, "", NULL },
    { "get a bb ccc\r\n", PLAN_SPLIT, MERGE_VALUES, "a bb ccc", false, false, "", NULL },
    { "gets a a\r\n", PLAN_SPLIT, MERGE_VALUES, "a a", false, false, "", NULL },
    { "gat 100 a b\r\n", PLAN_SPLIT, MERGE_VALUES, "a b", false, false, "", NULL },
    { "gats -1 a\r\n", PLAN_SINGLE, MERGE_NONE, "a", false, false, "", NULL },
    { "set k 1 2 3\r\nabc\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "", NULL },
    { "set k 1 2 3 noreply\r\nabc\r\n", PLAN_SINGLE, MERGE_NONE, "k", true, false, "", NULL },
    { "cas k 0 0 1 9 noreply\r\nx\r\n", PLAN_SINGLE, MERGE_NONE, "k", true, false, "", NULL },
    { "incr k 1 noreply\r\n", PLAN_SINGLE, MERGE_NONE, "k", true, false, "", NULL },
    { "delete k\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "", NULL },
    { "touch k 1 noreply\r\n", PLAN_SINGLE, MERGE_NONE, "k", true, false, "", NULL },
    { "mg k v f\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "", NULL },
    { "ms k 2 T0\r\nhi\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "", NULL },
    { "me k\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "", NULL },
    /* quiet: the request goes out followed by mn */
    { "mg k v q\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "mg k v q\r\nmn\r\n", NULL },
    { "ms k 2 q T0\r\nhi\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "ms k 2 q T0\r\nhi\r\nmn\r\n", NULL },
    { "md k q\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "md k q\r\nmn\r\n", NULL },
    { "ma k q D2\r\n", PLAN_SINGLE, MERGE_NONE, "k", false, false, "ma k q D2\r\nmn\r\n", NULL },
    /* version goes to the server its own word maps to */
    { "version\r\n", PLAN_SINGLE, MERGE_NONE, "version", false, false, "", NULL },
    { "  version x\r\n", PLAN_SINGLE, MERGE_NONE, "version", false, false, "", NULL },
    { "quit\r\n", PLAN_LOCAL, MERGE_NONE, "", false, true, "", "" },
    { "mn\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "MN\r\n" },
    /* no proxy behind the rig: what the protocol knows alone */
    { "stats\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "",
      "STAT version " KM_VERSION "\r\nSTAT pointer_size 64\r\nEND\r\n" },
    { "stats  \r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "",
      "STAT version " KM_VERSION "\r\nSTAT pointer_size 64\r\nEND\r\n" },
    /* the servers' storage figures: none at the proxy */
    { "stats slabs\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "END\r\n" },
    { "stats items\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "END\r\n" },
    { "stats settings\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "END\r\n" },
    { "stats cachedump 1 1\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "END\r\n" },
    { "stats detail on\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "END\r\n" },
    { "stats reset\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "RESET\r\n" },
    /* as memcached: an unknown subcommand is ERROR ("noreply" is one) */
    { "stats noreply\r\n", PLAN_ERROR, MERGE_NONE, "", false, false, "", "ERROR\r\n" },
    { "stats resets\r\n", PLAN_ERROR, MERGE_NONE, "", false, false, "", "ERROR\r\n" },
    { "stats cachedumpcachedump\r\n", PLAN_ERROR, MERGE_NONE, "", false, false, "", "ERROR\r\n" },
    /* to every server; the merge answers */
    { "flush_all\r\n", PLAN_ALL, MERGE_OK, "", false, false, "", NULL },
    { "flush_all 0 noreply\r\n", PLAN_ALL, MERGE_OK, "", true, false, "", NULL },
    { "verbosity 1\r\n", PLAN_LOCAL, MERGE_NONE, "", false, false, "", "OK\r\n" },
    { "verbosity 1 noreply\r\n", PLAN_LOCAL, MERGE_NONE, "", true, false, "", "OK\r\n" },
    { "mg Zm9v b v\r\n", PLAN_ERROR, MERGE_NONE, "Zm9v", false, false, "",
      "CLIENT_ERROR base64 keys (b flag) are not supported by the proxy\r\n" },
};

static void
test_plans(void **state)
{
    struct rig *r = *state;
    for (size_t i = 0; i < sizeof(plan_cases) / sizeof(plan_cases[0]); i++) {
        const struct plan_case *c = &plan_cases[i];
        for (size_t seg = 1; seg <= 3; seg++) {
            union parser ps;
            struct msg *m = parse_req(r, &ps, c->in, seg);
            assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
            if (m->plan != c->plan || m->merge != c->merge || m->noreply != c->noreply ||
                m->quit != c->quit)
                fail_msg("'%s': plan %d merge %d noreply %d quit %d, expected %d %d %d %d", c->in,
                         m->plan, m->merge, m->noreply, m->quit, c->plan, c->merge, c->noreply, c->quit);
            char keys[600] = "";
            for (uint32_t k = 0; k < m->ntok; k++) {
                if (k > 0)
                    strcat(keys, " ");
                strcat(keys, tok_text(m, k));
            }
            assert_string_equal(keys, c->keys);
            if (m->plan == PLAN_SINGLE || m->plan == PLAN_SPLIT) {
                assert_int_equal(m->key_first, 0);
                assert_int_equal(m->key_last, m->ntok - 1);
                assert_int_equal(m->key_step, 1);
            }
            assert_string_equal(out_text(m), c->out);
            if (c->reply != NULL) {
                assert_non_null(m->rsp);
                assert_true(m->done);
                assert_string_equal(out_text(m->rsp), c->reply);
                assert_int_equal(m->rsp->is_error, m->plan == PLAN_ERROR);
            } else {
                assert_null(m->rsp);
                assert_false(m->done);
            }
            msg_put(&r->mc, m);
        }
    }
}

/* ---- fragments ---------------------------------------------------------------------- */

struct frag_case {
    const char *in;
    uint32_t keys[8];
    uint32_t n;
    const char *out;
};

static const struct frag_case frag_cases[] = {
    { "get a bb ccc dddd\r\n", { 0, 2 }, 2, "get a ccc\r\n" },
    { "get a bb ccc dddd\r\n", { 1, 3 }, 2, "get bb dddd\r\n" },
    { "get a bb ccc dddd\r\n", { 3 }, 1, "get dddd\r\n" },
    { "get a bb ccc dddd\r\n", { 0, 1, 2 }, 3, "get a bb ccc\r\n" },
    { "gets a bb ccc dddd\r\n", { 2, 3 }, 2, "gets ccc dddd\r\n" },
    { "gat 100 a b c\r\n", { 0, 2 }, 2, "gat 100 a c\r\n" },
    { "gats -5 a b c\r\n", { 1 }, 1, "gats -5 b\r\n" },
    { "get  a   b  c \r\n", { 0, 2 }, 2, "get  a c\r\n" },
    { "get a b c\n", { 0, 2 }, 2, "get a c\r\n" },
    { "get x x y x\r\n", { 0, 1, 3 }, 3, "get x x x\r\n" },
};

static void
test_frags(void **state)
{
    struct rig *r = *state;
    for (size_t i = 0; i < sizeof(frag_cases) / sizeof(frag_cases[0]); i++) {
        const struct frag_case *c = &frag_cases[i];
        for (size_t seg = 1; seg <= 3; seg++) {
            union parser ps;
            struct msg *m = parse_req(r, &ps, c->in, seg);
            assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
            assert_int_equal(m->plan, PLAN_SPLIT);
            struct msg *f = msg_get(&r->mc);
            f->parent = m;
            f->cmd = m->cmd;
            assert_int_equal(P->frag(f, m, c->keys, c->n, &r->ctx), 0);
            /* the fragment holds its own references: the input may go */
            chain_drop(r);
            if (strcmp(out_text(f), c->out) != 0)
                fail_msg("'%s' keys %u..: got '%s', expected '%s'", c->in, c->keys[0], out_text(f), c->out);
            msg_put(&r->mc, f);
            msg_put(&r->mc, m);
        }
    }
}

/* ---- merges ------------------------------------------------------------------------- */

/* Plan the request, give it fragments (keyfrag[k] = the fragment of key k) answered with
 * replies[f] (NULL: an error reply made by error() with reason made_err), merge, and
 * compare the client's reply. */
static void
check_merge(struct rig *r, const char *req, const uint32_t *keyfrag, uint32_t nfrag,
            const char *const *replies, const char *made_err, const char *expect, bool is_error)
{
    for (size_t seg = 1; seg <= 3; seg++) {
        union parser ps;
        struct msg *m = parse_req(r, &ps, req, seg);
        struct buf *req_chain = r->chain;
        r->chain = NULL;   /* the request keeps its raw: the merge reads its keys */
        assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
        assert_int_equal(m->merge, MERGE_VALUES);
        uint32_t nkeys = m->ntok;
        assert_int_equal(msg_split_init(m, nfrag, nkeys), 0);
        memcpy(m->keyfrag, keyfrag, nkeys * sizeof(*m->keyfrag));
        m->nfrag = nfrag;
        for (uint32_t f = 0; f < nfrag; f++) {
            uint32_t keys[64], n = 0;
            for (uint32_t k = 0; k < nkeys; k++) {
                if (keyfrag[k] == f)
                    keys[n++] = k;
            }
            struct msg *fr = msg_get(&r->mc);
            fr->parent = m;
            fr->cmd = m->cmd;
            m->frags[f] = fr;
            assert_int_equal(P->frag(fr, m, keys, n, &r->ctx), 0);
            if (replies[f] != NULL) {
                fr->rsp = parse_rsp(r, fr, true, replies[f], seg);
            } else {
                fr->rsp = msg_get(&r->mc);
                assert_int_equal(P->error(fr->rsp, NULL, made_err, &r->ctx), 0);
            }
            chain_drop(r);
            m->nfrag_done++;
        }
        /* released as the core does once written */
        msg_drop_input(m);
        assert_int_equal(P->merge(m, &r->ctx), 0);
        assert_non_null(m->rsp);
        if (strcmp(out_text(m->rsp), expect) != 0)
            fail_msg("merge of '%s' (segments of %zu):\n  got      '%s'\n  expected '%s'", req, seg,
                     out_text(m->rsp), expect);
        assert_int_equal(m->rsp->is_error, is_error);
        msg_put(&r->mc, m);
        while (req_chain != NULL) {
            struct buf *n = req_chain->next;
            buf_unref(req_chain);
            req_chain = n;
        }
    }
}

static void
test_merge_order(void **state)
{
    struct rig *r = *state;
    /* each merge counts the keys found and missing (three times: check_merge runs three
     * segment sizes) */
    struct proto_counts c;
    memset(&c, 0, sizeof(c));
    r->ctx.counts = &c;
    /* a b c d a: a, c on fragment 0; b, d on fragment 1; c is missing */
    static const uint32_t kf[] = { 0, 1, 0, 1, 0 };
    static const char *const rep[] = {
        "VALUE a 0 1\r\n1\r\nVALUE a 0 1\r\n1\r\nEND\r\n",
        "VALUE b 5 2\r\nbb\r\nVALUE d 0 1\r\nd\r\nEND\r\n",
    };
    check_merge(r, "get a b c d a\r\n", kf, 2, rep, NULL,
                "VALUE a 0 1\r\n1\r\nVALUE b 5 2\r\nbb\r\nVALUE d 0 1\r\nd\r\nVALUE a 0 1\r\n1\r\nEND\r\n", false);
    assert_int_equal(ctr_get(&c.get_hits), 3 * 4);
    assert_int_equal(ctr_get(&c.get_misses), 3 * 1);

    /* everything missing */
    static const char *const none[] = { "END\r\n", "END\r\n" };
    check_merge(r, "get a b c d a\r\n", kf, 2, none, NULL, "END\r\n", false);

    /* gets: the cas unique travels with its item; a key that is a prefix of another */
    static const uint32_t kf3[] = { 2, 0, 1, 0 };
    static const char *const rep3[] = {
        "VALUE ab 1 3 77\r\nxyz\r\nEND\r\n",
        "VALUE abc 0 0 8\r\n\r\nEND\r\n",
        "VALUE a 0 5 9\r\nEND\r\n\r\nEND\r\n",
    };
    check_merge(r, "gets a ab abc abcd\r\n", kf3, 3, rep3, NULL,
                "VALUE a 0 5 9\r\nEND\r\n\r\nVALUE ab 1 3 77\r\nxyz\r\nVALUE abc 0 0 8\r\n\r\nEND\r\n", false);

    /* gat, values holding CRLFs and protocol words */
    static const uint32_t kf4[] = { 1, 0 };
    static const char *const rep4[] = {
        "VALUE y 0 9\r\nVALUE x\r\n\r\nEND\r\n",
        "VALUE x 0 2\r\n\r\n\r\nEND\r\n",
    };
    check_merge(r, "gat 10 x y\r\n", kf4, 2, rep4, NULL,
                "VALUE x 0 2\r\n\r\n\r\nVALUE y 0 9\r\nVALUE x\r\n\r\nEND\r\n", false);
    assert_int_equal(ctr_get(&c.touch_hits), 3 * 2);
    assert_int_equal(ctr_get(&c.touch_misses), 0);
    /* get and gets: 4 + 0 + 3 found, 1 + 5 + 1 missing */
    assert_int_equal(ctr_get(&c.get_hits), 3 * 7);
    assert_int_equal(ctr_get(&c.get_misses), 3 * 7);
    r->ctx.counts = NULL;
}

static void
test_merge_errors(void **state)
{
    struct rig *r = *state;
    static const uint32_t kf[] = { 0, 1, 0, 1 };
    /* a server error line answers for the whole request */
    static const char *const rep[] = {
        "VALUE a 0 1\r\n1\r\nEND\r\n",
        "SERVER_ERROR out of memory writing get response\r\n",
    };
    check_merge(r, "get a b c d\r\n", kf, 2, rep, NULL,
                "SERVER_ERROR out of memory writing get response\r\n", true);
    /* also when it came after some items: only the error line */
    static const char *const rep2[] = {
        "VALUE a 0 1\r\n1\r\nVALUE c 0 1\r\n3\r\nSERVER_ERROR busy\r\n",
        "VALUE b 0 1\r\n2\r\nEND\r\n",
    };
    check_merge(r, "get a b c d\r\n", kf, 2, rep2, NULL, "SERVER_ERROR busy\r\n", true);
    /* a fragment whose server failed (the reply made by error()) */
    static const char *const rep3[] = { "VALUE a 0 1\r\n1\r\nEND\r\n", NULL };
    check_merge(r, "get a b c d\r\n", kf, 2, rep3, "Connection refused",
                "SERVER_ERROR Connection refused\r\n", true);
    /* an error merged through counts no key */
    struct proto_counts c;
    memset(&c, 0, sizeof(c));
    r->ctx.counts = &c;
    check_merge(r, "get a b c d\r\n", kf, 2, rep, NULL,
                "SERVER_ERROR out of memory writing get response\r\n", true);
    assert_int_equal(ctr_get(&c.get_hits) + ctr_get(&c.get_misses), 0);
    r->ctx.counts = NULL;
}

/* ---- replies ------------------------------------------------------------------------ */

struct rsp_case {
    const char *req;
    const char *rsp;         /* what the server sends */
    const char *client;      /* what the client gets (the reply's raw after rsp_done) */
    uint8_t type;
    bool is_error;
};

static const struct rsp_case rsp_cases[] = {
    { "get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n", MC_RSP_VALUE_END, false },
    { "set a 0 0 1\r\nx\r\n", "STORED\r\n", "STORED\r\n", MC_RSP_LINE, false },
    { "incr a 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
      "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", MC_RSP_LINE, true },
    { "version\r\n", "VERSION 1.6.18\r\n", "VERSION 1.6.18\r\n", MC_RSP_LINE, false },
    { "mg a v\r\n", "VA 1 f0\r\nx\r\n", "VA 1 f0\r\nx\r\n", MC_RSP_META_VALUE, false },
    { "mg a v\r\n", "EN\r\n", "EN\r\n", MC_RSP_LINE, false },
    /* quiet requests: the reply runs through the MN of the added mn; the client gets
     * what precedes it */
    { "mg a v q\r\n", "MN\r\n", "", MC_RSP_LINE, false },
    { "mg a v q k\r\n", "VA 1 ka\r\nx\r\nMN\r\n", "VA 1 ka\r\nx\r\n", MC_RSP_META_VALUE, false },
    { "ms a 1 q\r\nx\r\n", "MN\r\n", "", MC_RSP_LINE, false },
    { "ms a 1 q MA\r\nx\r\n", "NS\r\nMN\r\n", "NS\r\n", MC_RSP_LINE, false },
    { "md a q\r\n", "MN\r\n", "", MC_RSP_LINE, false },
    { "ma a q N0 J10\r\n", "HD\r\nMN\r\n", "HD\r\n", MC_RSP_LINE, false },
    { "mg a q zz\r\n", "CLIENT_ERROR invalid flag\r\nMN\r\n", "CLIENT_ERROR invalid flag\r\n", MC_RSP_LINE, true },
};

static void
test_replies(void **state)
{
    struct rig *r = *state;
    for (size_t i = 0; i < sizeof(rsp_cases) / sizeof(rsp_cases[0]); i++) {
        const struct rsp_case *c = &rsp_cases[i];
        for (size_t seg = 1; seg <= 3; seg++) {
            union parser ps;
            struct msg *m = parse_req(r, &ps, c->req, seg);
            assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
            chain_drop(r);
            struct msg *rsp = parse_rsp(r, m, false, c->rsp, seg);
            if (strcmp(spans_text(&rsp->raw, 1), c->client) != 0)
                fail_msg("'%s' answered '%s': client gets '%s', expected '%s'", c->req, c->rsp,
                         spans_text(&rsp->raw, 1), c->client);
            assert_int_equal(rsp->type, c->type);
            assert_int_equal(rsp->is_error, c->is_error);
            chain_drop(r);
            /* as upstream.c does for a whole request */
            assert_int_equal(msg_out_borrow(rsp, rsp->raw.b, rsp->raw.off, rsp->raw.len), 0);
            assert_int_equal(rsp->outlen, strlen(c->client));
            msg_put(&r->mc, rsp);
            msg_put(&r->mc, m);
        }
    }
}

/* A quiet request's reply must end with MN: anything else there is out of step. */
static void
test_quiet_reply_out_of_step(void **state)
{
    struct rig *r = *state;
    union parser ps;
    struct msg *m = parse_req(r, &ps, "mg a v q\r\n", 2);
    assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
    chain_drop(r);
    union parser rs;
    assert_null(parse(r, false, m, false, &rs, "HD\r\nHD\r\n", 8, 3));
    assert_non_null(P->rsp_err(&rs));
    assert_null(parse(r, false, m, false, &rs, "EN\r\nERROR\r\n", 11, 3));
    /* the same bytes answer a request that is not quiet */
    struct msg *n = parse_req(r, &ps, "mg a v\r\n", 2);
    assert_int_equal(P->req_plan(n, &ps, &r->ctx), 0);
    chain_drop(r);
    struct msg *rsp = parse_rsp(r, n, false, "HD\r\nHD\r\n", 3);
    assert_int_equal(rsp->raw.len, 4);
    msg_put(&r->mc, rsp);
    msg_put(&r->mc, n);
    msg_put(&r->mc, m);
}

/* ---- errors ------------------------------------------------------------------------- */

static void
test_error_replies(void **state)
{
    struct rig *r = *state;
    struct msg *m = msg_get(&r->mc);
    assert_int_equal(P->error(m, NULL, "Connection refused", &r->ctx), 0);
    assert_string_equal(out_text(m), "SERVER_ERROR Connection refused\r\n");
    assert_true(m->is_error);
    msg_put(&r->mc, m);

    m = msg_get(&r->mc);
    assert_int_equal(P->error(m, "CLIENT_ERROR", "bad", &r->ctx), 0);
    assert_string_equal(out_text(m), "CLIENT_ERROR bad\r\n");
    msg_put(&r->mc, m);

    /* a long reason is cut, and the line still ends with CRLF */
    char reason[1200];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    m = msg_get(&r->mc);
    assert_int_equal(P->error(m, NULL, reason, &r->ctx), 0);
    const char *t = out_text(m);
    size_t n = strlen(t);
    assert_int_equal(n, 511);
    assert_memory_equal(t, "SERVER_ERROR rrr", 16);
    assert_memory_equal(t + n - 3, "r\r\n", 3);
    msg_put(&r->mc, m);

    m = msg_get(&r->mc);
    assert_int_equal(P->bad_request(m, "CLIENT_ERROR bad command line format", &r->ctx), 0);
    assert_string_equal(out_text(m), "CLIENT_ERROR bad command line format\r\n");
    assert_true(m->is_error);
    msg_put(&r->mc, m);
}

#define K250 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define K251 K250 "k"

struct bad_case {
    const char *in;
    const char *reason;      /* req_err's: the reply line; "" when the client gets none */
    bool recoverable;
    bool silent;             /* the client gets no reply bytes */
};

static const struct bad_case bad_cases[] = {
    { "bogus\r\n", "ERROR", true, false },
    { "get " K251 "\r\n", "CLIENT_ERROR bad command line format", true, false },
    { "set a x 0 1\r\n", "CLIENT_ERROR bad command line format", true, false },
    /* noreply: memcached stays silent, and so does the proxy */
    { "set a x 0 1 noreply\r\n", "", true, true },
    { "incr a x noreply\r\n", "", true, true },
    /* too many arguments: ERROR even with noreply */
    { "set a 0 0 1 noreply x\r\n", "ERROR", true, false },
    /* framing lost: the reply is given, then the connection closes */
    { "set a 0 0 1\r\nxy\r\n", "CLIENT_ERROR bad data chunk", false, false },
    { "set a 0 0 1 noreply\r\nxy\r\n", "CLIENT_ERROR bad data chunk", false, false },
    /* a binary-protocol request: closed without a reply it could not read */
    { "\x80\x01\x02\x03", "binary protocol not supported", false, true },
    { "verbosity noreply\r\n", "", true, true },
};

static void
test_bad_requests(void **state)
{
    struct rig *r = *state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        union parser ps;
        struct msg *ok = parse(r, true, NULL, false, &ps, c->in, strlen(c->in), 2);
        if (ok != NULL)
            fail_msg("'%s' was taken", c->in);
        bool rec = !c->recoverable;
        const char *why = P->req_err(&ps, &rec);
        assert_string_equal(why, c->reason);
        assert_int_equal(rec, c->recoverable);
        struct msg *m = msg_get(&r->mc);
        assert_int_equal(P->bad_request(m, why, &r->ctx), 0);
        if (c->silent) {
            assert_int_equal(m->outlen, 0);
        } else {
            char want[300];
            snprintf(want, sizeof(want), "%s\r\n", c->reason);
            assert_string_equal(out_text(m), want);
        }
        msg_put(&r->mc, m);
    }
}

/* An oversized value is discarded as it passes, then refused; the stream goes on. */
static void
test_discarding(void **state)
{
    (void)state;
    union parser ps;
    size_t used;
    struct ptok t;
    const char *line = "set big 0 0 1048577\r\n";
    P->req_init(&ps);
    assert_int_equal(P->req_feed(&ps, (const uint8_t *)line, strlen(line), &used, &t), PEV_TOKEN);
    assert_false(P->req_discarding(&ps));
    assert_int_equal(P->req_feed(&ps, (const uint8_t *)line + used, strlen(line) - used, &used, &t), PEV_AGAIN);
    assert_true(P->req_discarding(&ps));
    static uint8_t zeros[4096];
    uint64_t left = 1048577 + 2;
    int ev = PEV_AGAIN;
    while (left > 0) {
        size_t n = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
        ev = P->req_feed(&ps, zeros, n, &used, &t);
        assert_int_equal(used, n);
        left -= n;
        if (left > 0)
            assert_true(P->req_discarding(&ps));
    }
    assert_int_equal(ev, PEV_ERROR);
    assert_false(P->req_discarding(&ps));
    bool rec = false;
    assert_string_equal(P->req_err(&ps, &rec), "SERVER_ERROR object too large for cache");
    assert_true(rec);
    /* with noreply: refused in silence */
    P->req_init(&ps);
    const char *nr = "set big 0 0 2000000 noreply\r\n";
    size_t at = 0;
    while (at < strlen(nr)) {
        ev = P->req_feed(&ps, (const uint8_t *)nr + at, strlen(nr) - at, &used, &t);
        at += used;
    }
    left = 2000002;
    while (left > 0) {
        size_t n = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
        ev = P->req_feed(&ps, zeros, n, &used, &t);
        left -= n;
    }
    assert_int_equal(ev, PEV_ERROR);
    assert_string_equal(P->req_err(&ps, &rec), "");
    assert_true(rec);
}

/* ---- stats and counters ------------------------------------------------------------- */

/* What a proxy would say about itself (worker_self's part), with made-up figures. */
static void
fake_self(const void *arg, struct proto_self *out)
{
    const struct proto_counts *c = arg;
    memset(out, 0, sizeof(*out));
    out->pid = 4242;
    out->uptime_s = 77;
    out->now_s = 1800000000;
    out->curr_connections = 5;
    out->total_connections = 9;
    out->pool_clients = 3;
    out->workers = 1;
    out->nservers = 4;
    out->nlive = 3;
    out->pool = "gamma";
    proto_counts_add(&out->counts, c);
}

static const char *
fake_name(const void *arg, uint32_t idx)
{
    static const char *const names[] = { "10.0.0.1:11211", "10.0.0.2:11212", "web3" };
    (void)arg;
    return idx < 3 ? names[idx] : NULL;
}

/* Plan in (segments of 2) against the rig's context and return the request (not freed). */
static struct msg *
plan(struct rig *r, const char *in)
{
    union parser ps;
    struct msg *m = parse_req(r, &ps, in, 2);
    assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
    return m;
}

/* Requests are counted when planned, as memcached 1.6.18 counts them (captured: gat keys
 * under cmd_touch, every storage command under cmd_set, flush_all under cmd_flush). */
static void
test_counters(void **state)
{
    struct rig *r = *state;
    struct proto_counts c;
    memset(&c, 0, sizeof(c));
    r->ctx.counts = &c;
    static const char *const reqs[] = {
        "get a b c\r\n", "gets a\r\n", "gat 0 a b\r\n", "gats 0 a\r\n", "touch a 0\r\n",
        "mg a v\r\n", "mg a v q\r\n", "set a 0 0 1\r\nx\r\n", "add a 0 0 1 noreply\r\nx\r\n",
        "replace a 0 0 1\r\nx\r\n", "append a 0 0 1\r\nx\r\n", "prepend a 0 0 1\r\nx\r\n",
        "cas a 0 0 1 1\r\nx\r\n", "ms a 1\r\nx\r\n", "flush_all\r\n", "flush_all noreply\r\n",
        /* not counted */
        "incr a 1\r\n", "delete a\r\n", "md a\r\n", "ma a\r\n", "me a\r\n", "version\r\n",
        "verbosity 1\r\n", "mg Zm9v b v\r\n",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(reqs); i++)
        msg_put(&r->mc, plan(r, reqs[i]));
    chain_drop(r);
    assert_int_equal(ctr_get(&c.cmd_get), 3 + 1 + 2);
    assert_int_equal(ctr_get(&c.cmd_touch), 2 + 1 + 1);
    assert_int_equal(ctr_get(&c.cmd_set), 7);
    assert_int_equal(ctr_get(&c.cmd_flush), 2);
    assert_int_equal(ctr_get(&c.get_hits) + ctr_get(&c.get_misses) + ctr_get(&c.touch_hits) + ctr_get(&c.touch_misses), 0);

    /* hits and misses of requests sent whole, from their replies */
    static const struct {
        const char *req, *rsp;
        uint64_t gh, gm, th, tm;
    } rc[] = {
        { "get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n", 1, 0, 0, 0 },
        { "get a\r\n", "END\r\n", 0, 1, 0, 0 },
        /* a multi-get whose keys all live on one server goes whole */
        { "get a b c\r\n", "VALUE a 0 1\r\nx\r\nVALUE c 0 1\r\nz\r\nEND\r\n", 2, 1, 0, 0 },
        { "gets a b\r\n", "VALUE b 0 1 7\r\nx\r\nEND\r\n", 1, 1, 0, 0 },
        { "gat 0 a b\r\n", "VALUE b 0 1\r\nx\r\nEND\r\n", 0, 0, 1, 1 },
        { "touch a 0\r\n", "TOUCHED\r\n", 0, 0, 1, 0 },
        { "touch a 0\r\n", "NOT_FOUND\r\n", 0, 0, 0, 1 },
        { "mg a v\r\n", "VA 1\r\nx\r\n", 1, 0, 0, 0 },
        { "mg a\r\n", "HD\r\n", 1, 0, 0, 0 },
        { "mg a v\r\n", "EN\r\n", 0, 1, 0, 0 },
        /* quiet: no reply of its own means not found */
        { "mg a v q\r\n", "MN\r\n", 0, 1, 0, 0 },
        { "mg a v q\r\n", "VA 1\r\nx\r\nMN\r\n", 1, 0, 0, 0 },
        /* errors and other commands count nothing */
        { "get a\r\n", "SERVER_ERROR busy\r\n", 0, 0, 0, 0 },
        { "get a b\r\n", "VALUE a 0 1\r\nx\r\nSERVER_ERROR busy\r\n", 0, 0, 0, 0 },
        { "mg a v\r\n", "CLIENT_ERROR bad\r\n", 0, 0, 0, 0 },
        { "set a 0 0 1\r\nx\r\n", "STORED\r\n", 0, 0, 0, 0 },
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(rc); i++) {
        struct proto_count_values before = { 0 };
        proto_counts_add(&before, &c);
        struct msg *m = plan(r, rc[i].req);
        /* sent: its input goes (a multi-get's keys too, once sent whole) */
        m->merge = MERGE_NONE;
        msg_drop_input(m);
        chain_drop(r);
        union parser rs;
        struct msg *rsp = parse(r, false, m, false, &rs, rc[i].rsp, strlen(rc[i].rsp), 2);
        assert_non_null(rsp);
        P->rsp_count(&c, m, &rs);
        if (ctr_get(&c.get_hits) - before.get_hits != rc[i].gh || ctr_get(&c.get_misses) - before.get_misses != rc[i].gm ||
            ctr_get(&c.touch_hits) - before.touch_hits != rc[i].th || ctr_get(&c.touch_misses) - before.touch_misses != rc[i].tm)
            fail_msg("'%s' answered '%s': get %llu/%llu touch %llu/%llu, expected %llu/%llu %llu/%llu",
                     rc[i].req, rc[i].rsp, (unsigned long long)(ctr_get(&c.get_hits) - before.get_hits),
                     (unsigned long long)(ctr_get(&c.get_misses) - before.get_misses),
                     (unsigned long long)(ctr_get(&c.touch_hits) - before.touch_hits),
                     (unsigned long long)(ctr_get(&c.touch_misses) - before.touch_misses),
                     (unsigned long long)rc[i].gh, (unsigned long long)rc[i].gm,
                     (unsigned long long)rc[i].th, (unsigned long long)rc[i].tm);
        msg_put(&r->mc, rsp);
        msg_put(&r->mc, m);
        chain_drop(r);
    }

    r->ctx.counts = NULL;
}

/* stats with a proxy behind: its figures, the pool's counters; stats reset clears them. */
static void
test_stats_self(void **state)
{
    struct rig *r = *state;
    struct proto_counts c = { .cmd_get = { 10 }, .get_hits = { 7 }, .get_misses = { 3 },
                              .cmd_set = { 4 }, .cmd_touch = { 2 }, .touch_hits = { 1 },
                              .touch_misses = { 1 }, .cmd_flush = { 1 } };
    r->ctx.counts = &c;
    r->ctx.self = fake_self;
    r->ctx.self_arg = &c;
    struct msg *m = plan(r, "stats\r\n");
    assert_int_equal(m->plan, PLAN_LOCAL);
    assert_string_equal(out_text(m->rsp),
        "STAT pid 4242\r\nSTAT uptime 77\r\nSTAT time 1800000000\r\nSTAT version " KM_VERSION "\r\n"
        "STAT pointer_size 64\r\nSTAT curr_connections 5\r\nSTAT total_connections 9\r\n"
        "STAT config_generation 0\r\nSTAT reloads 0\r\nSTAT reload_failures 0\r\n"
        "STAT cmd_get 10\r\nSTAT cmd_set 4\r\nSTAT cmd_flush 1\r\nSTAT cmd_touch 2\r\n"
        "STAT get_hits 7\r\nSTAT get_misses 3\r\nSTAT touch_hits 1\r\nSTAT touch_misses 1\r\n"
        "STAT threads 1\r\nSTAT pool_clients 3\r\nSTAT pool_servers 4\r\nSTAT pool_servers_live 3\r\n"
        "END\r\n");
    msg_put(&r->mc, m);
    m = plan(r, "stats reset\r\n");
    assert_string_equal(out_text(m->rsp), "RESET\r\n");
    msg_put(&r->mc, m);
    struct proto_counts zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&c, &zero, sizeof(c));
    /* no proxy, but counters: this worker's */
    r->ctx.self = NULL;
    ctr_set(&c.cmd_get, 5);
    m = plan(r, "stats\r\n");
    assert_string_equal(out_text(m->rsp),
        "STAT version " KM_VERSION "\r\nSTAT pointer_size 64\r\n"
        "STAT cmd_get 5\r\nSTAT cmd_set 0\r\nSTAT cmd_flush 0\r\nSTAT cmd_touch 0\r\n"
        "STAT get_hits 0\r\nSTAT get_misses 0\r\nSTAT touch_hits 0\r\nSTAT touch_misses 0\r\nEND\r\n");
    msg_put(&r->mc, m);
    chain_drop(r);
    r->ctx.counts = NULL;
    r->ctx.self_arg = NULL;
}

/* flush_all: one fragment per server, each answered with
 * replies[f] ("" : none, sent with noreply; NULL: the proxy's error made_err), merged. */
static void
check_flush(struct rig *r, const char *req, uint32_t nfrag, const char *const *replies,
            const char *made_err, const char *expect, bool is_error)
{
    for (size_t seg = 1; seg <= 3; seg++) {
        union parser ps;
        struct msg *m = parse_req(r, &ps, req, seg);
        assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
        assert_int_equal(m->plan, PLAN_ALL);
        assert_int_equal(m->merge, MERGE_OK);
        /* as forward.c makes them */
        assert_int_equal(msg_split_all(m, nfrag, &r->mc), 0);
        assert_int_equal(m->nfrag, nfrag);
        for (uint32_t f = 0; f < nfrag; f++) {
            struct msg *fr = m->frags[f];
            assert_ptr_equal(fr->parent, m);
            assert_int_equal(fr->server, f);
            assert_int_equal(fr->noreply, m->noreply);
            assert_string_equal(out_text(fr), req);
        }
        msg_drop_input(m);
        chain_drop(r);
        for (uint32_t f = 0; f < nfrag; f++) {
            struct msg *fr = m->frags[f];
            msg_out_release(fr);
            if (replies[f] == NULL) {
                fr->rsp = msg_get(&r->mc);
                assert_int_equal(P->error(fr->rsp, NULL, made_err, &r->ctx), 0);
            } else if (replies[f][0] != '\0') {
                fr->rsp = parse_rsp(r, fr, false, replies[f], seg);
                chain_drop(r);
            }
            m->nfrag_done++;
        }
        assert_int_equal(P->merge(m, &r->ctx), 0);
        if (strcmp(out_text(m->rsp), expect) != 0)
            fail_msg("flush merge (segments of %zu):\n  got      '%s'\n  expected '%s'", seg,
                     out_text(m->rsp), expect);
        assert_int_equal(m->rsp->is_error, is_error);
        msg_put(&r->mc, m);
    }
}

static void
test_merge_flush(void **state)
{
    struct rig *r = *state;
    static const char *const ok[] = { "OK\r\n", "OK\r\n", "OK\r\n" };
    check_flush(r, "flush_all\r\n", 3, ok, NULL, "OK\r\n", false);
    check_flush(r, "flush_all 10\r\n", 1, ok, NULL, "OK\r\n", false);
    /* noreply: nothing comes back from any server */
    static const char *const none[] = { "", "", "" };
    check_flush(r, "flush_all noreply\r\n", 3, none, NULL, "OK\r\n", false);

    /* without server names: the index */
    static const char *const one[] = { "OK\r\n", NULL, "OK\r\n" };
    check_flush(r, "flush_all\r\n", 3, one, "Connection refused",
                "SERVER_ERROR flush_all failed on server #1: Connection refused\r\n", true);
    r->ctx.server_name = fake_name;
    check_flush(r, "flush_all\r\n", 3, one, "Connection refused",
                "SERVER_ERROR flush_all failed on server 10.0.0.2:11212: Connection refused\r\n", true);
    /* a server's own error line, its SERVER_ERROR dropped (the line says it once) */
    static const char *const two[] = { "SERVER_ERROR out of memory\r\n", "OK\r\n",
                                       "CLIENT_ERROR flush_all not allowed\r\n" };
    check_flush(r, "flush_all\r\n", 3, two, NULL,
                "SERVER_ERROR flush_all failed on server 10.0.0.1:11211: out of memory; "
                "server web3: CLIENT_ERROR flush_all not allowed\r\n", true);
    /* a server whose name the proxy does not know */
    static const char *const four[] = { "OK\r\n", "OK\r\n", "OK\r\n", NULL };
    check_flush(r, "flush_all\r\n", 4, four, "Connection timed out",
                "SERVER_ERROR flush_all failed on server #3: Connection timed out\r\n", true);
    r->ctx.server_name = NULL;

    /* many failures: the line is cut, and says so */
    union parser ps;
    struct msg *m = parse_req(r, &ps, "flush_all\r\n", 2);
    assert_int_equal(P->req_plan(m, &ps, &r->ctx), 0);
    assert_int_equal(msg_split_init(m, 40, 0), 0);
    for (uint32_t f = 0; f < 40; f++) {
        struct msg *fr = msg_get(&r->mc);
        fr->parent = m;
        fr->cmd = m->cmd;
        fr->server = (int32_t)f;
        fr->rsp = msg_get(&r->mc);
        assert_int_equal(P->error(fr->rsp, NULL, "Connection refused", &r->ctx), 0);
        m->frags[f] = fr;
        m->nfrag = f + 1;
    }
    assert_int_equal(P->merge(m, &r->ctx), 0);
    const char *t = out_text(m->rsp);
    size_t n = strlen(t);
    assert_true(n < 1024 + 16);
    assert_memory_equal(t, "SERVER_ERROR flush_all failed on server #0: Connection refused; server #1:", 74);
    assert_memory_equal(t + n - 5, "...\r\n", 5);
    msg_put(&r->mc, m);
    chain_drop(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plans, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_frags, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_merge_order, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_merge_errors, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_replies, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_quiet_reply_out_of_step, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_discarding, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_counters, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_stats_self, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_merge_flush, rig_setup, rig_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
