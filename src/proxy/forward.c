/* src/proxy/forward.c: the request path between client and servers: plan, route, split
 * into fragments, and on the way back merge the fragments' replies and finish requests. */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define KEY_STACK 256

/* The server for the key of len bytes at key; a channel (pub/sub) never goes to a random
 * server: its random choice is drawn from its name. */
static int
route_bytes(struct wpool *wp, const uint8_t *key, size_t len, bool channel)
{
    if (!channel)
        return pool_route(wp->pool, &wp->rand, key, len);
    uint64_t seed = km_fnv1a64(key, len);

    return pool_route(wp->pool, &seed, key, len);
}

int
forward_channel_server(struct wpool *wp, const uint8_t *name, size_t len)
{
    return route_bytes(wp, name, len, true);
}

/* The server for the key in token t (hash_tag applied by the route). */
static int
route_tok(struct wpool *wp, const struct tok *t, bool channel)
{
    uint8_t stack[KEY_STACK];
    const uint8_t *key;
    uint8_t *heap = NULL;
    int idx;

    if ((uint64_t)t->off + t->aux + t->len <= t->b->len) {
        key = t->b->data + t->off + t->aux;
    } else if (t->len <= KEY_STACK) {
        msg_tok_copy(t, 0, stack, (size_t)t->len);
        key = stack;
    } else {
        heap = malloc((size_t)t->len);
        if (heap == NULL)
            return -2;
        msg_tok_copy(t, 0, heap, (size_t)t->len);
        key = heap;
    }
    idx = route_bytes(wp, key, (size_t)t->len, channel);
    free(heap);
    return idx;
}

void
forward_fail(struct worker *w, struct wpool *wp, struct msg *m, const char *reason)
{
    struct proto_ctx ctx = worker_ctx(w, wp);
    struct msg *r;

    ctr_add(&wp->st->forward_error, 1);
    if (m->rsp != NULL) {
        msg_put(&w->mc, m->rsp);
        m->rsp = NULL;
    }
    r = msg_get(&w->mc);
    if (r != NULL && wp->pool->proto->error(r, NULL, reason, &ctx) == KM_OK) {
        m->rsp = r;
    } else if (r != NULL) {
        msg_put(&w->mc, r);
        r = NULL;
    }
    if (m->rsp == NULL) {
        /* out of memory even for an error: the client cannot be answered in order */
        log_error("out of memory answering a failed request");
        if (m->client != NULL)
            m->client->c.quit = true;
    }
    m->done = true;
    forward_complete(w, m);
}

void
forward_complete(struct worker *w, struct msg *m)
{
    struct msg *parent = m->parent;

    if (parent != NULL) {
        if (++parent->nfrag_done < parent->nfrag)
            return;
        m = parent;
        if (m->client == NULL) {
            msg_put(&w->mc, m);
            return;
        }
        struct wpool *wp = conn_wpool(&m->client->c);
        struct proto_ctx ctx = worker_ctx(w, wp);
        if (wp->pool->proto->merge(m, &ctx) != KM_OK) {
            if (m->rsp != NULL) {
                msg_put(&w->mc, m->rsp);
                m->rsp = NULL;
            }
            m->nfrag_done = 0;
            /* answer with an error; the fragments are released with the parent */
            struct msg *r = msg_get(&w->mc);
            if (r != NULL && wp->pool->proto->error(r, NULL, "out of memory", &ctx) == KM_OK)
                m->rsp = r;
            else if (r != NULL)
                msg_put(&w->mc, r);
        }
        m->done = true;
    }
    if (m->client == NULL) {
        msg_put(&w->mc, m);
        return;
    }
    client_reply_ready(m->client, m);
}

/* Queue m (a whole request or a fragment) for server idx: on the connection its client
 * has pinned to that server if it has one, after the client's requests there
 * (proxy/order.c), else on the shared connections. */
static void
dispatch(struct wpool *wp, struct msg *m, uint32_t idx)
{
    const struct msg *top = m->parent != NULL ? m->parent : m;
    struct upstream *u = session_conn(top->client, idx);

    if (u != NULL)
        upstream_queue(u, m);
    else
        upstream_send(wp, &wp->servers[idx], m);
}

/* Send m to server idx as it came, unless the protocol already said what to send
 * (memcached quiet requests go with an "mn" after them). */
static void
send_whole(struct worker *w, struct wpool *wp, struct msg *m, int idx)
{
    if (m->nout == 0 && msg_out_borrow(m, m->raw.b, m->raw.off, m->raw.len) != KM_OK) {
        forward_fail(w, wp, m, "out of memory");
        return;
    }
    dispatch(wp, m, (uint32_t)idx);
}

void
forward_send_on(struct worker *w, struct wpool *wp, struct msg *m, struct upstream *u)
{
    if (m->nout == 0 && msg_out_borrow(m, m->raw.b, m->raw.off, m->raw.len) != KM_OK) {
        forward_fail(w, wp, m, "out of memory");
        return;
    }
    upstream_queue(u, m);
}

void
forward_reply_error(struct client *cl, struct msg *m, const char *code, const char *reason)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    struct proto_ctx ctx = client_ctx(cl);
    struct msg *r = msg_get(&w->mc);

    if (r != NULL && wp->pool->proto->error(r, code, reason, &ctx) != KM_OK) {
        msg_put(&w->mc, r);
        r = NULL;
    }
    forward_answer(cl, m, r);
}

void
forward_answer(struct client *cl, struct msg *m, struct msg *r)
{
    struct worker *w = conn_worker(&cl->c);

    if (r == NULL) {
        forward_fail(w, conn_wpool(&cl->c), m, "out of memory");
        return;
    }
    if (m->rsp != NULL)
        msg_put(&w->mc, m->rsp);
    m->rsp = r;
    m->done = true;
    client_reply_ready(cl, m);
}

/* Splitting scratch on the stack up to this many 32-bit words (keys + 3 per fragment + 1);
 * a larger split takes one heap block for the call. */
#define SPLIT_STACK 512

static void
split(struct worker *w, struct wpool *wp, struct msg *m)
{
    uint32_t nkeys = (m->key_last - m->key_first) / m->key_step + 1;
    uint32_t maxfrag = KM_MIN(nkeys, wp->pool->nservers);
    uint32_t stack[SPLIT_STACK];
    uint32_t *scratch = stack;
    uint32_t *keys, *start, *fill;
    int32_t *fsrv;
    uint32_t nfrag = 0;
    struct proto_ctx ctx = worker_ctx(w, wp);
    const char *why = "out of memory";
    size_t words = (size_t)nkeys + 3 * (size_t)maxfrag + 1;

    if (words > SPLIT_STACK)
        scratch = malloc(words * sizeof(*scratch));
    if (scratch == NULL || msg_split_init(m, maxfrag, nkeys) != KM_OK)
        goto fail;
    keys = scratch;
    start = keys + nkeys;
    fill = start + maxfrag + 1;
    fsrv = (int32_t *)(fill + maxfrag);

    /* one pass: each key's server, numbering the servers in order of first use */
    for (uint32_t k = 0; k < nkeys; k++) {
        int idx = route_tok(wp, &m->tok[m->key_first + k * m->key_step], false);
        if (idx < 0) {
            why = idx == -1 ? "no server available" : "out of memory";
            goto fail_slots;
        }
        if (wp->srvslot[idx] < 0) {
            wp->srvslot[idx] = (int32_t)nfrag;
            fsrv[nfrag++] = idx;
        }
        m->keyfrag[k] = (uint32_t)wp->srvslot[idx];
    }
    for (uint32_t f = 0; f < nfrag; f++)
        wp->srvslot[fsrv[f]] = -1;

    if (nfrag == 1) {
        /* every key on one server: the request goes as it is and so does the reply */
        int idx = fsrv[0];
        msg_split_free(m);
        if (scratch != stack)
            free(scratch);
        m->merge = MERGE_NONE;
        send_whole(w, wp, m, idx);
        return;
    }

    /* key numbers grouped by fragment, in the client's order within each */
    memset(start, 0, (nfrag + 1) * sizeof(*start));
    memset(fill, 0, nfrag * sizeof(*fill));
    for (uint32_t k = 0; k < nkeys; k++)
        start[m->keyfrag[k] + 1]++;
    for (uint32_t f = 0; f < nfrag; f++)
        start[f + 1] += start[f];
    for (uint32_t k = 0; k < nkeys; k++) {
        uint32_t f = m->keyfrag[k];
        keys[start[f] + fill[f]++] = k;
    }

    for (uint32_t f = 0; f < nfrag; f++) {
        struct msg *fr = msg_get(&w->mc);
        if (fr == NULL)
            goto fail_frags;
        m->frags[f] = fr;
        m->nfrag = f + 1;
        fr->parent = m;
        fr->cmd = m->cmd;
        if (wp->pool->proto->frag(fr, m, keys + start[f], start[f + 1] - start[f], &ctx) != KM_OK)
            goto fail_frags;
    }
    ctr_add(&wp->st->fragments, nfrag);
    /* the fragments hold what they borrowed; the parent's bytes can go */
    msg_drop_input(m);
    for (uint32_t f = 0; f < nfrag; f++)
        dispatch(wp, m->frags[f], (uint32_t)fsrv[f]);
    if (scratch != stack)
        free(scratch);
    return;

fail_frags:
    /* nothing was sent yet: drop the fragments and answer the parent with an error */
    for (uint32_t f = 0; f < m->nfrag; f++) {
        if (m->frags[f] != NULL)
            msg_put(&w->mc, m->frags[f]);
    }
    m->nfrag = 0;
    goto fail;
fail_slots:
    for (uint32_t f = 0; f < nfrag; f++)
        wp->srvslot[fsrv[f]] = -1;
fail:
    msg_split_free(m);
    if (scratch != stack)
        free(scratch);
    forward_fail(w, wp, m, why);
}

/* PLAN_ALL: the request as the client wrote it to every server of the pool, ejected ones
 * included (memcached flush_all); the merge, once all have answered, names each fragment's
 * server by its index. */
static void
send_all(struct worker *w, struct wpool *wp, struct msg *m)
{
    if (msg_split_all(m, wp->pool->nservers, &w->mc) != KM_OK) {
        forward_fail(w, wp, m, "out of memory");
        return;
    }
    ctr_add(&wp->st->fragments, m->nfrag);
    msg_drop_input(m);
    for (uint32_t i = 0; i < m->nfrag; i++)
        dispatch(wp, m->frags[i], i);
}

/* PLAN_INDEX: m to the server the protocol chose (m->server), as the one fragment of m,
 * which the protocol builds: its reply then comes back through the protocol's merge (SCAN
 * rewrites the cursor both ways). The server is asked even when ejected, since the client
 * named it: a server that is down answers with the usual error. */
static void
send_index(struct worker *w, struct wpool *wp, struct msg *m)
{
    struct proto_ctx ctx = worker_ctx(w, wp);
    struct msg *fr = NULL;

    if (m->server < 0 || (uint32_t)m->server >= wp->pool->nservers) {
        forward_fail(w, wp, m, "no such server");
        return;
    }
    if (msg_split_init(m, 1, 0) != KM_OK || (fr = msg_get(&w->mc)) == NULL)
        goto fail;
    m->frags[0] = fr;
    m->nfrag = 1;
    fr->parent = m;
    fr->cmd = m->cmd;
    if (wp->pool->proto->frag(fr, m, NULL, 0, &ctx) != KM_OK) {
        msg_put(&w->mc, fr);
        m->nfrag = 0;
        goto fail;
    }
    msg_drop_input(m);
    dispatch(wp, fr, (uint32_t)m->server);
    return;
fail:
    msg_split_free(m);
    forward_fail(w, wp, m, "out of memory");
}

int
forward_keys_server(struct wpool *wp, const struct msg *m)
{
    if (m->key_first == 0)
        return -4;
    int idx = m->key_extra != 0 ? route_tok(wp, &m->tok[m->key_extra], false) : -4;

    if (idx < 0 && idx != -4)
        return idx;
    for (uint32_t k = m->key_first; k <= m->key_last; k += m->key_step) {
        int i = route_tok(wp, &m->tok[k], m->channel);
        if (i < 0)
            return i;
        if (idx >= 0 && i != idx)
            return -3;
        idx = i;
    }
    return idx;
}

void
forward_request(struct client *cl, struct msg *m)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    struct proto_ctx ctx = client_ctx(cl);
    /* the tokenizer's state, which memcached plans from; a Redis request planned after a
     * wait (proxy/order.c) may find the client's input let go */
    const union parser *ps = cl->c.in != NULL ? &cl->c.in->rd.ps : NULL;

    if (wp->pool->proto->req_plan(m, ps, &ctx) != KM_OK) {
        forward_fail(w, wp, m, "out of memory");
        return;
    }
    switch (m->plan) {
    case PLAN_LOCAL:
    case PLAN_ERROR:
    case PLAN_DROP:
        m->done = true;
        client_reply_ready(cl, m);
        return;
    case PLAN_PUBSUB:
        pubsub_forward(cl, m);
        return;
    default:
        break;
    }
    if (session_takes(cl, m))
        session_forward(cl, m);
    else
        forward_route(cl, m);
}

void
forward_route(struct client *cl, struct msg *m)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    int idx;

    switch (m->plan) {
    case PLAN_LOCAL:
    case PLAN_ERROR:
    case PLAN_DROP:
    case PLAN_SESSION:
    case PLAN_PUBSUB:
        m->done = true;
        client_reply_ready(cl, m);
        return;

    case PLAN_SINGLE:
        idx = route_tok(wp, &m->tok[m->key_first], m->channel);
        if (idx < 0) {
            forward_fail(w, wp, m, idx == -1 ? "no server available" : "out of memory");
            return;
        }
        send_whole(w, wp, m, idx);
        return;

    case PLAN_SAMESRV:
        idx = forward_keys_server(wp, m);
        if (idx == -3) {
            forward_reply_error(cl, m, "CROSSSLOT", FORWARD_CROSSSLOT);
            return;
        }
        if (idx < 0) {
            forward_fail(w, wp, m, idx == -1 ? "no server available" : "out of memory");
            return;
        }
        send_whole(w, wp, m, idx);
        return;

    case PLAN_SPLIT:
        split(w, wp, m);
        return;

    case PLAN_ALL:
        send_all(w, wp, m);
        return;

    case PLAN_INDEX:
        send_index(w, wp, m);
        return;
    }
}
