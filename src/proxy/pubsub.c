/* src/proxy/pubsub.c: Redis pub/sub through the proxy, on server connections pinned to a
 * subscribed client.
 *
 * A channel lives on the server its name maps to (forward_channel_server: the pool's
 * hash, hash_tag and distribution, as for a key), and PUBLISH goes there on the shared
 * connections; so a message published through any client reaches every subscriber of its
 * channel. A pattern may match a channel of any server: it is subscribed on every server,
 * and each message still comes once, from its channel's server.
 *
 *   client --SUBSCRIBE a b--> a's server: SUBSCRIBE a   (on the client's subscription
 *                             b's server: SUBSCRIBE b    connection to each; opened here)
 *          <--subscribe a 1, subscribe b 2--  once both servers confirmed: the counts are
 *                                             the client's own, as one Redis counts them
 *          <--message a ...-- from a's server, passed on as it came
 *
 * The proxy keeps the client's channels and patterns (what it asked for, copied) and
 * answers each command with Redis's confirmations itself, made when the command is read,
 * in the order of its arguments; the reply waits in the client's FIFO until every server
 * the command went to has confirmed, so that a message published after the client saw a
 * confirmation is delivered. Messages join the FIFO as they come, behind what the client
 * is owed, so the client sees one ordered stream; a message for a channel or pattern the
 * client has left since is dropped. What waits for a slow client counts against
 * client_output_limit like any reply.
 *
 * A subscription connection that fails ends every subscription of its client: what the
 * client is owed gets an error, then one more error says which server was lost, and the
 * client is closed; a library reconnects and subscribes again. When the client has no
 * subscription left its connections close (they are never cached: the server holds the
 * client's subscriptions on them), and it is out of subscribed mode.
 */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/nameset.h"
#include "proto/redis_pubsub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct subscriber {
    struct nameset channels;   /* val: the server index it was subscribed on */
    struct nameset patterns;   /* on every server */
    struct upstream **conns;   /* one per server of the client's pool, NULL when none */
    uint32_t nservers;
};

/* Names of pushes up to this long are looked up from the stack. */
#define NAME_STACK 256

/* What a subscription connection answers while nothing is asked on it: pushes. */
static struct msg listening = { .elems = true };

static uint64_t
nsubs(const struct subscriber *s)
{
    return (uint64_t)s->channels.n + s->patterns.n;
}

static struct subscriber *
sub_of(struct client *cl)
{
    if (cl->sub != NULL)
        return cl->sub;
    struct subscriber *s = calloc(1, sizeof(*s));
    uint32_t n = conn_pool(&cl->c)->nservers;
    if (s == NULL || (s->conns = calloc(n > 0 ? n : 1, sizeof(*s->conns))) == NULL) {
        free(s);
        return NULL;
    }
    s->nservers = n;
    cl->sub = s;
    return s;
}

/* The requests of cl still waiting for confirmations: answered now, with what they hold
 * (err NULL) or an error. */
static void
settle_pending(struct client *cl, const char *err)
{
    for (struct msg *m = cl->head; m != NULL; m = m->cnext) {
        if (m->plan != PLAN_PUBSUB || m->done)
            continue;
        m->nfrag_done = 0;
        if (err != NULL) {
            forward_reply_error(cl, m, NULL, err);
        } else {
            m->done = true;
            client_reply_ready(cl, m);
        }
    }
}

/* Close cl's subscription connections and forget its subscriptions. */
static void
drop_all(struct client *cl, const char *why)
{
    struct subscriber *s = cl->sub;

    cl->sub = NULL;
    cl->sess.subscribed = 0;
    for (uint32_t i = 0; i < s->nservers; i++) {
        struct upstream *u = s->conns[i];
        if (u == NULL)
            continue;
        u->owner = NULL;
        session_unreserve(u->srv->pool);
        upstream_abandon(u, why);
    }
    nameset_free(&s->channels);
    nameset_free(&s->patterns);
    free(s->conns);
    free(s);
}

/* End cl's subscriptions with an error it sees, then close it. */
static void
end_with_error(struct client *cl, const char *what)
{
    struct worker *w = conn_worker(&cl->c);
    struct proto_ctx ctx = client_ctx(cl);
    char text[256];

    log_warn("pool %s: client fd %d: its subscriptions end: %s", conn_pool(&cl->c)->cf->name,
             cl->c.fd, what);
    snprintf(text, sizeof(text), "the subscriptions ended: %s", what);
    drop_all(cl, what);
    settle_pending(cl, text);
    struct msg *m = msg_get(&w->mc);
    struct msg *r = m != NULL ? msg_get(&w->mc) : NULL;
    if (r != NULL && conn_pool(&cl->c)->proto->error(r, NULL, text, &ctx) == KM_OK) {
        m->rsp = r;
        m->plan = PLAN_ERROR;
        m->done = true;
        m->quit = true;
        client_push(cl, m);
    } else {
        if (r != NULL)
            msg_put(&w->mc, r);
        if (m != NULL)
            msg_put(&w->mc, m);
    }
    conn_stop_reading(&cl->c);
    cl->c.quit = true;
    worker_mark_dirty(w, &cl->c);
}

/* cl's subscription connection to server idx, opened if needed; NULL with why. */
static struct upstream *
sub_conn(struct client *cl, uint32_t idx, char *why, size_t whylen)
{
    struct subscriber *s = cl->sub;
    struct wpool *wp = conn_wpool(&cl->c);
    struct upstream *u = s->conns[idx];

    if (u != NULL)
        return u;
    if (!session_reserve(wp->pool, why, whylen))
        return NULL;
    u = upstream_open_pinned(wp, &wp->servers[idx]);
    if (u == NULL) {
        snprintf(why, whylen, "server %s: %s", wp->servers[idx].srv->ident, strerror(errno));
        session_unreserve(wp->pool);
        pool_server_failed(wp->pool, wp->servers[idx].srv, km_now_ms());
        return NULL;
    }
    u->sub = true;
    u->owner = cl;
    s->conns[idx] = u;
    return u;
}

/* The names of one command (its arguments, or every name the client has), where each
 * goes, and which of them a server is to be told of. */
struct names {
    uint32_t n;
    const uint8_t **name;      /* the bytes: on the request's segment, or own[i] */
    uint8_t **own;             /* copies made here, freed with the list */
    size_t *len;
    int32_t *srv;              /* the server of a channel; -1 (a pattern): every server */
    bool *send;                /* to be sent to its server(s) */
};

static bool
names_init(struct names *l, uint32_t n)
{
    size_t k = n > 0 ? n : 1;

    l->n = n;
    l->name = calloc(k, sizeof(*l->name));
    l->own = calloc(k, sizeof(*l->own));
    l->len = calloc(k, sizeof(*l->len));
    l->srv = calloc(k, sizeof(*l->srv));
    l->send = calloc(k, sizeof(*l->send));
    return l->name != NULL && l->own != NULL && l->len != NULL && l->srv != NULL &&
           l->send != NULL;
}

static void
names_free(struct names *l)
{
    for (uint32_t i = 0; l->own != NULL && i < l->n; i++)
        free(l->own[i]);
    free(l->name);
    free(l->own);
    free(l->len);
    free(l->srv);
    free(l->send);
}

/* Name i is len bytes at p, copied (copy) or, when they lie on one segment, pointed at. */
static bool
names_set(struct names *l, uint32_t i, const struct tok *t, const uint8_t *p, size_t len)
{
    l->len[i] = len;
    if (t != NULL && (uint64_t)t->off + t->aux + t->len <= t->b->len) {
        l->name[i] = t->b->data + t->off + t->aux;
        return true;
    }
    if ((l->own[i] = malloc(len > 0 ? len : 1)) == NULL)
        return false;
    if (t != NULL)
        msg_tok_copy(t, 0, l->own[i], len);
    else
        memcpy(l->own[i], p, len);
    l->name[i] = l->own[i];
    return true;
}

/* The names of l marked to send that go to server idx, as one command (word) on u; the
 * server confirms each name once, and m is answered when all of them are in. */
static int
send_names(struct client *cl, struct msg *m, const char *word, const struct names *l,
           uint32_t idx, struct upstream *u)
{
    struct worker *w = conn_worker(&cl->c);
    struct proto_ctx ctx = client_ctx(cl);
    uint32_t k = 0;

#define TO_IDX(i) (l->send[i] && (l->srv[i] < 0 || (uint32_t)l->srv[i] == idx))
    for (uint32_t i = 0; i < l->n; i++)
        k += TO_IDX(i);
    if (k == 0)
        return KM_OK;
    struct msg *f = msg_get(&w->mc);
    if (f == NULL || redis_cmd_head(f, word, k, &ctx) != KM_OK)
        goto nomem;
    for (uint32_t i = 0; i < l->n; i++) {
        if (TO_IDX(i) && redis_cmd_arg(f, l->name[i], l->len[i], &ctx) != KM_OK)
            goto nomem;
    }
#undef TO_IDX
    f->swallow = true;
    f->elems = true;
    f->parent = m;             /* the request its confirmations answer (not a fragment) */
    f->nfrag_done = k;         /* confirmations still to come */
    m->nfrag_done++;           /* commands still to confirm */
    upstream_queue(u, f);
    return KM_OK;
nomem:
    if (f != NULL)
        msg_put(&w->mc, f);
    return KM_ERROR;
}

/* Send what l marks to every server cl has a connection to; m waits for the
 * confirmations, or is answered now when nothing was sent. */
static int
send_all_names(struct client *cl, struct msg *m, const char *word, const struct names *l)
{
    struct subscriber *s = cl->sub;

    for (uint32_t j = 0; j < s->nservers; j++) {
        if (s->conns[j] != NULL && send_names(cl, m, word, l, j, s->conns[j]) != KM_OK)
            return KM_ERROR;
    }
    if (m->nfrag_done == 0) {
        m->done = true;
        client_reply_ready(cl, m);
    }
    return KM_OK;
}

/* SUBSCRIBE / PSUBSCRIBE. */
static void
subscribe(struct client *cl, struct msg *m, bool pattern)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    struct proto_ctx ctx = client_ctx(cl);
    struct subscriber *s = sub_of(cl);
    struct nameset *set = s == NULL ? NULL : pattern ? &s->patterns : &s->channels;
    struct msg *r = msg_get(&w->mc);
    struct names l;
    char why[256] = "out of memory";
    bool ok = names_init(&l, m->ntok - 1) && s != NULL && r != NULL;

    /* where each name goes, and the connections for it: before anything changes */
    for (uint32_t i = 0; ok && i < l.n; i++) {
        const struct tok *t = &m->tok[i + 1];
        ok = names_set(&l, i, t, NULL, (size_t)t->len);
        l.srv[i] = -1;
        if (!ok || pattern)
            continue;
        l.srv[i] = forward_channel_server(wp, l.name[i], l.len[i]);
        if (l.srv[i] < 0) {
            snprintf(why, sizeof(why), "no server available");
            ok = false;
        }
    }
    for (uint32_t i = 0; ok && i < l.n; i++) {
        if (nameset_find(set, l.name[i], l.len[i]) != NULL)
            continue;
        for (uint32_t j = 0; ok && j < s->nservers; j++) {
            if (pattern || (uint32_t)l.srv[i] == j)
                ok = sub_conn(cl, j, why, sizeof(why)) != NULL;
        }
    }
    /* the set and the confirmations, in the order of the arguments */
    for (uint32_t i = 0; ok && i < l.n; i++) {
        int rc = nameset_add(set, l.name[i], l.len[i], (uint32_t)(l.srv[i] < 0 ? 0 : l.srv[i]));
        l.send[i] = rc == 1;
        ok = rc >= 0 && redis_push_confirm(r, pattern ? "psubscribe" : "subscribe", l.name[i],
                                           l.len[i], nsubs(s), &ctx) == KM_OK;
    }
    if (!ok) {
        /* what this command added to the set goes again */
        for (uint32_t i = 0; s != NULL && l.send != NULL && i < l.n; i++) {
            if (l.send[i])
                nameset_del(set, l.name[i], l.len[i], NULL);
        }
        if (r != NULL)
            msg_put(&w->mc, r);
        forward_fail(w, wp, m, why);
        if (s != NULL && nsubs(s) == 0)
            drop_all(cl, "its client has no subscription left");   /* just opened */
    } else {
        cl->sess.subscribed = 1;
        m->rsp = r;
        /* past this point the set holds names no server may know of: trust none */
        if (send_all_names(cl, m, pattern ? "PSUBSCRIBE" : "SUBSCRIBE", &l) != KM_OK)
            end_with_error(cl, "out of memory");
    }
    names_free(&l);
}

/* UNSUBSCRIBE / PUNSUBSCRIBE: the names given, or every one the client has. */
static void
unsubscribe(struct client *cl, struct msg *m, bool pattern)
{
    struct worker *w = conn_worker(&cl->c);
    struct proto_ctx ctx = client_ctx(cl);
    struct subscriber *s = cl->sub;
    struct nameset *set = s == NULL ? NULL : pattern ? &s->patterns : &s->channels;
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    struct msg *r = msg_get(&w->mc);
    struct names l;
    bool ok = names_init(&l, m->ntok > 1 ? m->ntok - 1 : set != NULL ? set->n : 0) && r != NULL;

    /* the names, copied when they come from the set: removing them frees its copies */
    for (uint32_t i = 0, j = 0; ok && i < l.n; i++) {
        if (m->ntok > 1) {
            ok = names_set(&l, i, &m->tok[i + 1], NULL, (size_t)m->tok[i + 1].len);
            continue;
        }
        while (set->slots[j].hash == 0)
            j++;
        ok = names_set(&l, i, NULL, set->slots[j].name, set->slots[j].len);
        j++;
    }
    /* nothing to leave: one confirmation naming no channel */
    if (ok && l.n == 0)
        ok = redis_push_confirm(r, kind, NULL, 0, s != NULL ? nsubs(s) : 0, &ctx) == KM_OK;
    for (uint32_t i = 0; ok && i < l.n; i++) {
        uint32_t idx = 0;
        l.send[i] = set != NULL && nameset_del(set, l.name[i], l.len[i], &idx);
        l.srv[i] = pattern ? -1 : (int32_t)idx;
        ok = redis_push_confirm(r, kind, l.name[i], l.len[i], s != NULL ? nsubs(s) : 0,
                                &ctx) == KM_OK;
    }
    if (!ok) {
        if (r != NULL)
            msg_put(&w->mc, r);
        forward_fail(w, conn_wpool(&cl->c), m, "out of memory");
    } else if (s == NULL || l.n == 0) {
        forward_answer(cl, m, r);
    } else if (nsubs(s) == 0) {
        /* nothing left: the connections close, which ends the server side of it all */
        m->rsp = r;
        drop_all(cl, "its client has no subscription left");
        settle_pending(cl, NULL);
    } else {
        m->rsp = r;
        if (send_all_names(cl, m, pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE", &l) != KM_OK)
            end_with_error(cl, "out of memory");
    }
    names_free(&l);
}

void
pubsub_forward(struct client *cl, struct msg *m)
{
    switch (m->sop) {
    case SOP_SUBSCRIBE:
    case SOP_PSUBSCRIBE:
        subscribe(cl, m, m->sop == SOP_PSUBSCRIBE);
        break;
    default:
        unsubscribe(cl, m, m->sop == SOP_PUNSUBSCRIBE);
        break;
    }
}

void
pubsub_release(struct client *cl)
{
    if (cl->sub == NULL)
        return;
    drop_all(cl, "its client left");
    /* the FIFO is emptied next: what waited for a confirmation is freed with it */
    for (struct msg *m = cl->head; m != NULL; m = m->cnext) {
        if (m->plan == PLAN_PUBSUB && !m->done) {
            m->nfrag_done = 0;
            m->done = true;
        }
    }
}

void
pubsub_conn_lost(struct upstream *u)
{
    struct client *cl = u->owner;
    char what[192];

    u->owner = NULL;
    cl->sub->conns[u->srv->idx] = NULL;
    session_unreserve(u->srv->pool);
    snprintf(what, sizeof(what), "the connection to server %s was lost", u->srv->ident);
    end_with_error(cl, what);
}

/* Whether the channels of a client of o map to the same servers in n (same servers in the
 * same order, the same placement), so its subscriptions stay where they are. */
static bool
same_placement(const struct pool *o, const struct pool *n)
{
    if (o->nservers != n->nservers || o->cf->hash != n->cf->hash ||
        o->cf->distribution != n->cf->distribution ||
        strcmp(o->cf->hash_tag, n->cf->hash_tag) != 0)
        return false;
    for (uint32_t i = 0; i < o->nservers; i++) {
        const struct server *ns = pool_server_of((struct pool *)n, o->servers[i].state);
        if (ns == NULL || ns->idx != i || ns->cf->weight != o->servers[i].cf->weight ||
            strcmp(ns->ident, o->servers[i].ident) != 0)
            return false;
    }
    return true;
}

void
pubsub_adopt(struct worker *w, uint32_t oidx, struct wpool *n, uint32_t nidx, bool compatible)
{
    struct wpool *o = &w->pools[oidx];
    bool stays = n != NULL && compatible && same_placement(o->pool, n->pool);

    for (struct client *cl = w->clients, *next; cl != NULL; cl = next) {
        next = cl->next;
        if (cl->sub == NULL || cl->c.pidx != oidx)
            continue;
        if (n != NULL && !stays) {
            end_with_error(cl, "the pool's servers or placement changed in a reload; "
                               "subscribe again");
            continue;
        }
        for (uint32_t i = 0; i < cl->sub->nservers; i++) {
            struct upstream *u = cl->sub->conns[i];
            if (u == NULL)
                continue;
            u->c.pidx = nidx;
            if (n != NULL) {
                u->ws = &n->servers[i];
                u->srv = n->servers[i].srv;
            }
        }
    }
}

/* ---- what a subscription connection reads ---------------------------------------- */

static struct msg *
on_answers(void *arg)
{
    struct upstream *u = arg;

    return u->if_head != NULL ? u->if_head : &listening;
}

/* A message push for cl: passed on when cl still wants it. */
static void
deliver(struct client *cl, struct msg *rsp, const struct tok *name, uint64_t skip,
        uint64_t len, bool pattern)
{
    struct worker *w = conn_worker(&cl->c);
    uint8_t stack[NAME_STACK];
    uint8_t *heap = NULL;
    const uint8_t *p = stack;

    if (len > NAME_STACK && (p = heap = malloc((size_t)len)) == NULL) {
        msg_put(&w->mc, rsp);
        return;
    }
    msg_tok_copy(name, skip, (uint8_t *)p, (size_t)len);
    bool wanted = nameset_find(pattern ? &cl->sub->patterns : &cl->sub->channels, p,
                               (size_t)len) != NULL;
    free(heap);
    struct msg *m = wanted && !cl->c.quit ? msg_get(&w->mc) : NULL;
    if (m == NULL || msg_out_borrow(rsp, rsp->raw.b, rsp->raw.off, rsp->raw.len) != KM_OK) {
        if (m != NULL)
            msg_put(&w->mc, m);
        msg_put(&w->mc, rsp);
        return;
    }
    m->rsp = rsp;
    m->plan = PLAN_LOCAL;
    m->done = true;
    client_push(cl, m);
}

static int
on_push(void *arg, struct msg *rsp)
{
    struct upstream *u = arg;
    struct worker *w = conn_worker(&u->c);
    struct client *cl = u->owner;
    struct msg *req = u->if_head;
    const struct tok *name = NULL;
    uint64_t skip = 0, len = 0;
    enum push_kind kind = redis_push_kind(rsp, &name, &skip, &len);

    ctr_add(&u->ws->st->responses, 1);
    ctr_add(&u->ws->st->response_bytes, rsp->raw.len);
    if (cl == NULL) {
        msg_put(&w->mc, rsp);
        return conn_go_on(&u->c);
    }
    if (kind == PUSH_MESSAGE || kind == PUSH_PMESSAGE) {
        pool_server_ok(u->srv);
        deliver(cl, rsp, name, skip, len, kind == PUSH_PMESSAGE);
        return conn_go_on(&u->c);
    }
    if (req != NULL && !req->elems) {
        /* the connection's set-up (AUTH, SELECT) */
        if (rsp->is_error)
            log_error("pool %s: server %s refused the connection set-up (AUTH/SELECT)",
                      conn_pool(&u->c)->cf->name, u->srv->ident);
        msg_put(&w->mc, upstream_pop_reply(u));
        msg_put(&w->mc, rsp);
        return conn_go_on(&u->c);
    }
    if (req == NULL || kind == PUSH_OTHER) {
        log_warn("pool %s: server %s sent %s on a subscription connection",
                 conn_pool(&u->c)->cf->name, u->srv->ident,
                 rsp->is_error ? "an error" : "an unexpected reply");
        msg_put(&w->mc, rsp);
        return KM_ERROR;   /* the connection fails; its client hears of it */
    }
    msg_put(&w->mc, rsp);
    pool_server_ok(u->srv);
    if (--req->nfrag_done > 0)
        return conn_go_on(&u->c);
    struct msg *m = req->parent;
    msg_put(&w->mc, upstream_pop_reply(u));
    if (m != NULL && !m->done && --m->nfrag_done == 0) {
        m->done = true;
        client_reply_ready(cl, m);
    }
    return conn_go_on(&u->c);
}

static int
on_bad(void *arg, const char *reason, bool recoverable)
{
    struct upstream *u = arg;

    (void)recoverable;
    log_warn("pool %s: server %s sent a bad push: %s", conn_pool(&u->c)->cf->name,
             u->srv->ident, reason);
    ctr_add(&u->ws->st->server_err, 1);
    return KM_ERROR;
}

const struct reader_ops pubsub_reader_ops = { on_answers, on_push, on_bad };
