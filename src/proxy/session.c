/* src/proxy/session.c: Redis transactions, WATCH and blocking commands, each on a server
 * connection pinned to its client while it needs one.
 *
 *   client --MULTI--> +OK (here: the transaction's server is not known yet)
 *          --PING---> +QUEUED (here; a copy is held)
 *          --SET k--> k's server fixes the transaction: a pinned connection (from the
 *                     worker's idle cache, or a new one under max_pinned_connections)
 *                     gets MULTI and the held PING (their replies swallowed), then SET k
 *          --GET j--> j on another server: -CROSSSLOT, the transaction is marked bad
 *          --EXEC---> EXECABORT here, DISCARD on the pinned connection (swallowed);
 *                     a good one: EXEC on the pinned connection, Redis's reply as it is
 *
 * WATCH fixes the server at once (its keys on one server) and MULTI then goes there.
 * A blocking command (BLPOP, BRPOP, BLMOVE, BZPOPMIN, ..., XREAD and XREADGROUP with
 * BLOCK) takes a pinned connection for itself, so it blocks no other client, and the pool
 * timeout does not cut it short.
 * While a client holds a pinned connection, its requests for that server go on it,
 * fragments of split requests included (the server sees them in the client's order); for
 * other servers they use the shared ones. A request that takes a pinned connection waits
 * for the answers to the client's requests before it (proxy/order.c).
 *
 * WAIT counts the replicas that acknowledged the writes of its own connection. A shared
 * connection carries the writes of every client, and a fresh one none, so WAIT is served
 * only on a pinned connection (the client's WATCH): there it waits for the client's own
 * writes to that server, as a blocking command. A client without one gets an error.
 * Inside MULTI it is queued like PING (Redis answers it in EXEC without blocking).
 *
 * The connection goes back to the idle cache when its last reply is in and the session
 * is over (no transaction, no WATCH): the server holds no state of the client then, so
 * the next client finds it clean. A client that leaves with a session open, or with a
 * command still blocked, closes it instead (Redis then drops the transaction, the WATCH,
 * the blocked command). A pinned connection that fails ends the session's server side:
 * the open transaction is marked bad (EXEC answers EXECABORT and nothing of it runs), and
 * a WATCH is lost, so the next EXEC answers nil as for a touched key; a client library
 * retries as it does for a WATCH conflict.
 */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keyless commands held before a transaction's server is known (beyond: refused). */
#define HELD_MAX 64
#define HELD_BYTES (64u * 1024)
/* Idle pinned connections kept per server and worker past a tick. */
#define IDLE_MAX 4

#define TEXT_LOST "the transaction's server connection was lost; EXEC will abort it"
#define TEXT_WAIT "WAIT through keymux counts the writes of a session: WATCH a key first, " \
                  "then the writes to that key's server and WAIT go on this client's own " \
                  "server connection"

static const char multi_cmd[] = "*1\r\n$5\r\nMULTI\r\n";
static const char discard_cmd[] = "*1\r\n$7\r\nDISCARD\r\n";
static const char unwatch_cmd[] = "*1\r\n$7\r\nUNWATCH\r\n";

/* An internal request (its reply swallowed) with the n bytes at p. NULL: no memory. */
static struct msg *
internal(struct worker *w, const void *p, size_t n)
{
    struct msg *m = msg_get(&w->mc);

    if (m == NULL)
        return NULL;
    m->swallow = true;
    if (msg_out_bytes(m, &w->bp, p, n) != KM_OK) {
        msg_put(&w->mc, m);
        return NULL;
    }
    return m;
}

/* Queue an internal request on u; false when out of memory. */
static bool
send_internal(struct worker *w, struct upstream *u, const char *cmd, size_t n)
{
    struct msg *m = internal(w, cmd, n);

    if (m == NULL)
        return false;
    upstream_queue(u, m);
    return true;
}

static void
drop_held(struct worker *w, struct pinned *p)
{
    while (p->held != NULL) {
        struct msg *m = p->held;
        p->held = m->snext;
        m->snext = NULL;
        msg_put(&w->mc, m);
    }
    p->held_tail = NULL;
    p->nheld = 0;
    p->held_bytes = 0;
}

/* Answer m here with the n bytes at text. */
static void
reply_here(struct client *cl, struct msg *m, const char *text, size_t n)
{
    struct proto_ctx ctx = client_ctx(cl);

    forward_answer(cl, m, proto_reply_bytes(&ctx, text, n));
}

#define REPLY_HERE(cl, m, lit) reply_here((cl), (m), (lit), sizeof(lit) - 1)

static bool
session_over(const struct client *cl)
{
    return !cl->sess.multi && !cl->sess.watching;
}

/* Give up cl's pinned connection: back to the cache when clean and idle, else closed.
 * The session's proxy-side state goes with it. */
static void
unpin(struct client *cl, bool clean)
{
    struct pinned *p = cl->pin;
    struct worker *w = conn_worker(&cl->c);
    struct upstream *u = p->u;

    cl->pin = NULL;
    drop_held(w, p);
    free(p);
    if (u == NULL)
        return;
    u->owner = NULL;
    session_unreserve(u->srv->pool);
    if (clean && !upstream_busy(u) && !u->c.closing) {
        u->cached = true;
        u->inext = u->ws->idle;
        u->ws->idle = u;
        u->ws->nidle++;
        return;
    }
    upstream_abandon(u, "its client left with a session open");
}

/* The pinned state of cl, made if needed; NULL when out of memory. */
static struct pinned *
pin_of(struct client *cl)
{
    if (cl->pin == NULL)
        cl->pin = calloc(1, sizeof(*cl->pin));
    return cl->pin;
}

/* A connection to server idx pinned to cl (cl->pin->u). On failure, NULL with the reason
 * (and whether it is the limit) in *why. */
static struct upstream *
pin_take(struct client *cl, struct wpool *wp, uint32_t idx, char *why, size_t whylen)
{
    struct pinned *p = pin_of(cl);
    struct wserver *ws = &wp->servers[idx];
    struct pool *pool = wp->pool;
    struct upstream *u;

    if (p == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (!session_reserve(pool, why, whylen))
        return NULL;
    if (ws->idle != NULL) {
        u = ws->idle;
        ws->idle = u->inext;
        ws->nidle--;
        u->inext = NULL;
        u->cached = false;
    } else if ((u = upstream_open_pinned(wp, ws)) == NULL) {
        session_unreserve(pool);
        snprintf(why, whylen, "%s", strerror(errno));
        pool_server_failed(pool, ws->srv, km_now_ms());
        return NULL;
    }
    u->owner = cl;
    p->u = u;
    return u;
}

bool
session_reserve(struct pool *p, char *why, size_t whylen)
{
    uint32_t limit = p->cf->max_pinned_connections;
    uint32_t n = atomic_fetch_add_explicit(&p->state->npinned, 1, memory_order_relaxed);

    if (n < limit)
        return true;
    atomic_fetch_sub_explicit(&p->state->npinned, 1, memory_order_relaxed);
    snprintf(why, whylen, "max_pinned_connections (%u) of pool %s are in use; a transaction, "
             "WATCH, blocking command or subscription needs one", limit, p->cf->name);
    log_warn("pool %s: %s", p->cf->name, why);
    return false;
}

void
session_unreserve(struct pool *p)
{
    atomic_fetch_sub_explicit(&p->state->npinned, 1, memory_order_relaxed);
}

/* The connection m's transaction runs on, its MULTI and held commands sent: taken for
 * server idx when there is none yet. NULL when none could be had (m is answered). */
static struct upstream *
txn_conn(struct client *cl, struct msg *m, int idx)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    struct pinned *p = cl->pin;
    struct upstream *u = p != NULL ? p->u : NULL;
    char why[256];

    if (u == NULL) {
        u = pin_take(cl, wp, (uint32_t)idx, why, sizeof(why));
        if (u == NULL) {
            cl->sess.multi_bad = 1;
            forward_fail(w, wp, m, why);
            return NULL;
        }
        p = cl->pin;
    }
    if (!p->multi_sent) {
        if (!send_internal(w, u, multi_cmd, sizeof(multi_cmd) - 1)) {
            cl->sess.multi_bad = 1;
            forward_fail(w, wp, m, "out of memory");
            return NULL;
        }
        p->multi_sent = true;
        while (p->held != NULL) {
            struct msg *h = p->held;
            p->held = h->snext;
            h->snext = NULL;
            upstream_queue(u, h);
        }
        p->held_tail = NULL;
        p->nheld = 0;
        p->held_bytes = 0;
    }
    return u;
}

/* A keyless command queued before the transaction's server is known: held (a copy),
 * +QUEUED now. */
static void
hold(struct client *cl, struct msg *m)
{
    struct worker *w = conn_worker(&cl->c);
    struct pinned *p = pin_of(cl);

    if (p == NULL || p->nheld >= HELD_MAX || p->held_bytes + m->raw.len > HELD_BYTES) {
        cl->sess.multi_bad = 1;
        forward_reply_error(cl, m, NULL, p == NULL ? "out of memory"
                            : "too many commands without a key before the transaction's "
                              "first key (the proxy holds them until it knows the server)");
        return;
    }
    struct msg *h = msg_get(&w->mc);
    if (h == NULL || msg_out_borrow(h, m->raw.b, m->raw.off, m->raw.len) != KM_OK) {
        if (h != NULL)
            msg_put(&w->mc, h);
        cl->sess.multi_bad = 1;
        forward_reply_error(cl, m, NULL, "out of memory");
        return;
    }
    h->swallow = true;
    h->cmd = m->cmd;
    h->snext = NULL;
    if (p->held_tail != NULL)
        p->held_tail->snext = h;
    else
        p->held = h;
    p->held_tail = h;
    p->nheld++;
    p->held_bytes += m->raw.len;
    REPLY_HERE(cl, m, "+QUEUED\r\n");
}

static void
cross_server(struct client *cl, struct msg *m, int idx, const char *what)
{
    if (idx == -1 || idx == -2) {
        forward_fail(conn_worker(&cl->c), conn_wpool(&cl->c), m,
                     idx == -1 ? "no server available" : "out of memory");
        return;
    }
    forward_reply_error(cl, m, "CROSSSLOT", what);
}

/* EXEC of a transaction with nothing sent to a server yet. */
static void
exec_unsent(struct client *cl, struct msg *m)
{
    struct wpool *wp = conn_wpool(&cl->c);
    struct pinned *p = cl->pin;

    if (p == NULL || p->nheld == 0) {
        REPLY_HERE(cl, m, "*0\r\n");
        return;
    }
    /* only keyless commands: any server runs them; the one the empty key maps to */
    int idx = pool_route(wp->pool, &wp->rand, (const uint8_t *)"", 0);
    if (idx < 0) {
        forward_fail(conn_worker(&cl->c), wp, m, "no server available");
        return;
    }
    struct upstream *u = txn_conn(cl, m, idx);
    if (u != NULL) {
        cl->pin->multi_sent = false;
        forward_send_on(conn_worker(&cl->c), wp, m, u);
    }
}

static void
session_op(struct client *cl, struct msg *m)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    struct pinned *p = cl->pin;
    struct upstream *u = p != NULL ? p->u : NULL;
    char why[256];
    int idx;

    if (p != NULL && m->sop != SOP_KEYLESS)
        p->multi_lost = false;   /* a session op ends or begins a transaction */
    switch (m->sop) {
    case SOP_MULTI:
        if (p != NULL)
            p->multi_sent = false;
        if (u != NULL && !p->watch_lost) {
            p->multi_sent = true;   /* the server answers +OK */
            forward_send_on(w, wp, m, u);
        } else {
            REPLY_HERE(cl, m, "+OK\r\n");
        }
        return;
    case SOP_EXEC:
        if (p != NULL && p->watch_lost) {
            drop_held(w, p);
            p->watch_lost = false;
            if (u != NULL && p->multi_sent && send_internal(w, u, discard_cmd,
                                                            sizeof(discard_cmd) - 1))
                p->multi_sent = false;
            REPLY_HERE(cl, m, "*-1\r\n");   /* as for a watched key that was touched */
        } else if (u != NULL && p->multi_sent) {
            p->multi_sent = false;
            forward_send_on(w, wp, m, u);
        } else {
            exec_unsent(cl, m);
        }
        break;
    case SOP_EXECABORT:
        if (p != NULL) {
            drop_held(w, p);
            p->watch_lost = false;
            /* the server's transaction, or the WATCH it holds, ends too */
            if (u != NULL && p->multi_sent)
                (void)send_internal(w, u, discard_cmd, sizeof(discard_cmd) - 1);
            else if (u != NULL)
                (void)send_internal(w, u, unwatch_cmd, sizeof(unwatch_cmd) - 1);
            p->multi_sent = false;
        }
        client_reply_ready(cl, m);   /* EXECABORT, made by the protocol */
        break;
    case SOP_DISCARD:
        if (p != NULL) {
            drop_held(w, p);
            p->watch_lost = false;
        }
        if (u != NULL && p->multi_sent) {
            p->multi_sent = false;
            forward_send_on(w, wp, m, u);
        } else {
            /* DISCARD also ends a WATCH the server holds */
            if (u != NULL)
                (void)send_internal(w, u, unwatch_cmd, sizeof(unwatch_cmd) - 1);
            REPLY_HERE(cl, m, "+OK\r\n");
        }
        break;
    case SOP_WATCH:
        idx = forward_keys_server(wp, m);
        if (idx < 0 || (u != NULL && (uint32_t)idx != u->srv->idx)) {
            if (u == NULL)
                cl->sess.watching = 0;
            cross_server(cl, m, idx, u == NULL ? FORWARD_CROSSSLOT
                         : "WATCH keys must be on the server of the keys this client "
                           "already watches");
            break;
        }
        if (u == NULL && (u = pin_take(cl, wp, (uint32_t)idx, why, sizeof(why))) == NULL) {
            cl->sess.watching = 0;
            forward_fail(w, wp, m, why);
            break;
        }
        forward_send_on(w, wp, m, u);
        break;
    case SOP_UNWATCH:
        if (p != NULL)
            p->watch_lost = false;
        if (u != NULL)
            forward_send_on(w, wp, m, u);
        else
            REPLY_HERE(cl, m, "+OK\r\n");
        break;
    case SOP_KEYLESS:
        if (p != NULL && p->multi_lost)
            forward_reply_error(cl, m, NULL, TEXT_LOST);
        else if (cl->sess.multi_bad || (p != NULL && p->watch_lost))
            REPLY_HERE(cl, m, "+QUEUED\r\n");   /* EXEC will not run it */
        else if (u != NULL && p->multi_sent)
            forward_send_on(w, wp, m, u);
        else
            hold(cl, m);
        return;
    default:
        forward_reply_error(cl, m, NULL, "unsupported command");
        break;
    }
}

/* WAIT outside a transaction: on the pinned connection, which carries the writes the
 * client made to its server since it took it; with none, nothing of the client's own is
 * there to count. */
static void
session_wait(struct client *cl, struct msg *m)
{
    struct upstream *u = cl->pin != NULL ? cl->pin->u : NULL;

    if (u == NULL) {
        forward_reply_error(cl, m, NULL, TEXT_WAIT);
        return;
    }
    forward_send_on(conn_worker(&cl->c), conn_wpool(&cl->c), m, u);
}

/* Whether m may take a pinned connection: cl holds none, and m is a transaction's
 * command (its first with a key takes one; EXEC sends the held keyless ones), a WATCH or
 * a blocking command. */
static bool
takes_pin(const struct client *cl, const struct msg *m)
{
    if (cl->pin != NULL && cl->pin->u != NULL)
        return false;
    if (m->plan == PLAN_SESSION)
        return m->sop == SOP_WATCH || m->sop == SOP_EXEC;
    return m->in_multi || m->blocking;
}

void
session_forward(struct client *cl, struct msg *m)
{
    struct worker *w = conn_worker(&cl->c);
    struct wpool *wp = conn_wpool(&cl->c);
    struct upstream *u = cl->pin != NULL ? cl->pin->u : NULL;
    char why[256];
    int idx;

    if (takes_pin(cl, m) && !order_answered_before(cl, m)) {
        /* what the client sent before is on shared connections: m goes after it */
        if (pin_of(cl) == NULL)
            forward_fail(w, wp, m, "out of memory");
        else
            order_hold(cl, m);
        return;
    }
    if (m->plan == PLAN_SESSION && m->sop == SOP_WAIT) {
        session_wait(cl, m);
    } else if (m->plan == PLAN_SESSION) {
        session_op(cl, m);
    } else if (m->in_multi) {
        idx = forward_keys_server(wp, m);
        if (cl->pin != NULL && cl->pin->multi_lost) {
            forward_reply_error(cl, m, NULL, TEXT_LOST);
        } else if (cl->sess.multi_bad || (cl->pin != NULL && cl->pin->watch_lost)) {
            REPLY_HERE(cl, m, "+QUEUED\r\n");   /* EXEC will not run it */
        } else if (idx < 0 || (u != NULL && (uint32_t)idx != u->srv->idx)) {
            cl->sess.multi_bad = 1;
            cross_server(cl, m, idx == -4 ? -3 : idx,
                         "Keys in a transaction must all be on one server");
        } else if ((u = txn_conn(cl, m, idx)) != NULL) {
            forward_send_on(w, wp, m, u);
        }
    } else if (m->blocking) {
        idx = forward_keys_server(wp, m);
        if (idx < 0 || (u != NULL && (uint32_t)idx != u->srv->idx)) {
            cross_server(cl, m, idx, u == NULL ? FORWARD_CROSSSLOT
                         : "a blocking command's keys must be on the server of this "
                           "client's WATCH");
        } else if (u == NULL && (u = pin_take(cl, wp, (uint32_t)idx, why, sizeof(why))) == NULL) {
            forward_fail(w, wp, m, why);
        } else {
            forward_send_on(w, wp, m, u);
        }
    } else {
        /* a plain request: what of it is for the pinned server goes on the pinned
         * connection (forward_route asks session_conn) */
        forward_route(cl, m);
    }
    /* a session that ended without a request left on its connection */
    if (cl->pin != NULL && session_over(cl) && cl->pin->nheld == 0 &&
        (cl->pin->u == NULL || !upstream_busy(cl->pin->u)))
        unpin(cl, true);
}

void
session_after_reply(struct upstream *u)
{
    struct client *cl = u->owner;

    if (cl == NULL || upstream_busy(u) || !session_over(cl) || cl->pin->nheld > 0)
        return;
    unpin(cl, true);   /* cached: u stays open, so the reader that called us goes on */
}

bool
session_blocked(const struct client *cl)
{
    const struct upstream *u = cl->pin != NULL ? cl->pin->u : NULL;

    for (const struct msg *m = u != NULL ? u->if_head : NULL; m != NULL; m = m->snext) {
        if (m->blocking)
            return true;
    }
    return false;
}

void
session_release(struct client *cl)
{
    if (cl->pin == NULL)
        return;
    unpin(cl, session_over(cl) && cl->pin->nheld == 0 && !cl->pin->watch_lost);
}

void
session_conn_lost(struct upstream *u)
{
    struct client *cl = u->owner;
    struct pinned *p = cl->pin;

    u->owner = NULL;
    p->u = NULL;
    session_unreserve(u->srv->pool);
    if (p->multi_sent || cl->sess.multi)
        cl->sess.multi_bad = cl->sess.multi;   /* EXEC answers EXECABORT */
    p->multi_sent = false;
    p->multi_lost = cl->sess.multi;
    if (cl->sess.watching)
        p->watch_lost = true;
    log_info("pool %s: client fd %d lost its pinned connection to server %s%s",
             conn_pool(&cl->c)->cf->name, cl->c.fd, u->srv->ident,
             cl->sess.multi ? " inside a transaction" : "");
}

void
session_close_idle(struct wpool *wp, bool all)
{
    for (uint32_t j = 0; j < wp->pool->nservers; j++) {
        struct wserver *ws = &wp->servers[j];
        while (ws->idle != NULL && (all || ws->nidle > IDLE_MAX)) {
            struct upstream *u = ws->idle;
            upstream_close(u);   /* unlinks it from ws->idle */
        }
    }
}

void
session_adopt(struct worker *w, uint32_t oidx, struct wpool *n, uint32_t nidx, bool compatible)
{
    pubsub_adopt(w, oidx, n, nidx, compatible);
    for (struct client *cl = w->clients; cl != NULL; cl = cl->next) {
        struct upstream *u = cl->pin != NULL ? cl->pin->u : NULL;
        if (u == NULL || u->c.pidx != oidx)
            continue;
        if (n == NULL) {
            u->c.pidx = nidx;   /* drains with its client */
            continue;
        }
        struct server *ns = compatible ? pool_server_of(n->pool, u->srv->state) : NULL;
        if (ns == NULL) {
            upstream_abandon(u, "its server left the configuration");
            continue;
        }
        u->ws = &n->servers[ns->idx];
        u->srv = ns;
        u->c.pidx = nidx;
    }
}
