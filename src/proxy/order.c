/* src/proxy/order.c: a client's requests reach each server in the order it sent them,
 * whichever of its connections they take.
 *
 * Redis orders the commands of one connection and none across two. A client's plain
 * requests go on the shared connections; its session (a transaction, a WATCH, a blocking
 * command) goes on a connection pinned to it (proxy/session.c). Two rules keep a server
 * seeing one client's requests in the client's order:
 *
 * - While the client holds a pinned connection to a server, everything it sends that
 *   server goes on it: whole requests and the fragments of split ones alike
 *   (session_conn, asked by forward.c for every send).
 * - A request that would take a pinned connection waits until every request the client
 *   sent before it is answered, as those are on shared connections and would race it:
 *
 *     client: INCR {t}c   MULTI   GET {t}c   EXEC
 *             shared      +OK     held ...   read, not planned
 *             reply in -> GET takes the pin (MULTI, GET), then EXEC follows on it
 *
 *   What the client sends meanwhile is read and kept in its FIFO but not planned (a plan
 *   moves the session's state on: MULTI, EXEC), and reading pauses until the wait ends;
 *   then the waiting request goes, and the ones read after it follow in order.
 *
 * Going back the other way needs no wait: a pinned connection is given up only once its
 * replies are all in (session_after_reply).
 *
 * The wait costs the client a round trip at most, and only when it takes a pinned
 * connection behind requests still in flight.
 */
#include "proxy/proxy.h"

/* Move p->scan past the client's answered requests: it stops at the first one not
 * answered, or at the waiting request itself. Every request before p->scan is answered,
 * so client_flush, which retires answered requests from the head, never frees p->scan
 * as long as this runs before it retires any. */
static void
advance(struct pinned *p)
{
    while (p->scan != p->stall && p->scan->done)
        p->scan = p->scan->cnext;
}

bool
order_answered_before(const struct client *cl, const struct msg *m)
{
    for (const struct msg *e = cl->head; e != NULL && e != m; e = e->cnext) {
        if (!e->done)
            return false;
    }
    return true;
}

void
order_hold(struct client *cl, struct msg *m)
{
    struct pinned *p = cl->pin;

    m->waiting = true;
    p->stall = m;
    p->scan = cl->head;
    advance(p);
    conn_stop_reading(&cl->c);
}

void
order_replied(struct client *cl)
{
    struct pinned *p = cl->pin;

    advance(p);
    if (p->scan == p->stall)
        worker_mark_dirty(conn_worker(&cl->c), &cl->c);
}

void
order_resume(struct client *cl)
{
    struct pinned *p = cl->pin;

    advance(p);
    if (p->scan != p->stall)
        return;
    struct msg *m = p->stall;
    p->stall = NULL;
    p->scan = NULL;
    m->waiting = false;
    /* cl->pin may be gone after this (a session that ended at once): p is not used again */
    session_forward(cl, m);
    for (struct msg *n = m->cnext; n != NULL && !order_holding(cl); n = n->cnext) {
        if (!n->waiting)
            continue;   /* a pub/sub push, complete already */
        n->waiting = false;
        forward_request(cl, n);
        if (n->quit) {
            /* QUIT: what came after it is not run; it goes with the client */
            cl->c.quit = true;
            return;
        }
    }
    if (!order_holding(cl) && !cl->c.quit)
        conn_start_reading(&cl->c);
}
