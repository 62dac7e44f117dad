/* src/proxy/adopt.c: a worker takes a new generation of the configuration at a safe point,
 * and lets what the old one left behind drain.
 *
 *   old views (w->pools)              new views (one per pool of the new generation)
 *   [alpha][beta][gamma]   adopt ->   [alpha'][delta] [beta (draining)] [gamma (draining)]
 *
 *   alpha kept (alpha' has its state): its clients and the connections of every server
 *         alpha' keeps (same name and address, same AUTH and SELECT) move to alpha';
 *         connections nothing takes over stay in a draining view of alpha until their
 *         replies are back
 *   listening sockets go by address: a new view takes the socket of the old view that
 *         listened on its address (so a pool that keeps its address, or changes protocol
 *         on it, never stops accepting), or the one the main thread opened for a new
 *         address; an old socket that nothing takes closes
 *   beta removed (or its protocol changed): its listener closes, its clients read and
 *         answer what they have sent and then close, and its view drains
 *   delta added: a view with the listening socket the main thread opened for it
 *
 * Clients and server connections find their view by index (conn.pidx), so every index
 * is rewritten here. A draining view keeps a reference to its generation, so the pools
 * its clients and connections use stay; worker_drain closes it once nothing is left.
 */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A server connection made for pool a can serve pool b: what it said when it was set up
 * (AUTH, SELECT) is what b would say. */
static bool
conns_compatible(const struct conf_pool *a, const struct conf_pool *b)
{
    return conf_same_str(a->redis_auth, b->redis_auth) && a->redis_db == b->redis_db;
}

/* Does any server connection of wp remain? */
static bool
has_conns(const struct wpool *wp)
{
    for (uint32_t j = 0; j < wp->pool->nservers; j++) {
        for (uint32_t k = 0; k < wp->pool->cf->server_connections; k++) {
            if (wp->servers[j].conns[k] != NULL)
                return true;
        }
    }
    return false;
}

/* Close the connections of wp that have nothing to finish. */
static void
close_idle(struct wpool *wp)
{
    for (uint32_t j = 0; j < wp->pool->nservers; j++) {
        for (uint32_t k = 0; k < wp->pool->cf->server_connections; k++) {
            struct upstream *u = wp->servers[j].conns[k];
            if (u != NULL && !upstream_busy(u))
                upstream_close(u);
        }
    }
}

/* Hand the connections of old view o that the new view n can use over to it. */
static void
move_conns(struct wpool *o, struct wpool *n, uint32_t nidx)
{
    uint32_t omax = o->pool->cf->server_connections, nmax = n->pool->cf->server_connections;

    if (!conns_compatible(o->pool->cf, n->pool->cf))
        return;
    for (uint32_t j = 0; j < o->pool->nservers; j++) {
        struct wserver *ows = &o->servers[j];
        struct server *ns = pool_server_of(n->pool, ows->srv->state);
        if (ns == NULL)
            continue;
        struct wserver *nws = &n->servers[ns->idx];
        for (uint32_t k = 0; k < omax && k < nmax; k++) {
            struct upstream *u = ows->conns[k];
            if (u == NULL)
                continue;
            ows->conns[k] = NULL;
            u->ws = nws;
            u->srv = ns;
            u->c.pidx = nidx;
            nws->conns[k] = u;
        }
        nws->next = ows->next;
    }
}

/* Point every connection of view wp at index idx. */
static void
reindex_conns(struct wpool *wp, uint32_t idx)
{
    for (uint32_t j = 0; j < wp->pool->nservers; j++) {
        for (uint32_t k = 0; k < wp->pool->cf->server_connections; k++) {
            if (wp->servers[j].conns[k] != NULL)
                wp->servers[j].conns[k]->c.pidx = idx;
        }
    }
}

static void
adopt(struct worker *w, struct snapshot *ns)
{
    struct snapshot *os = w->snap;
    uint32_t nnew = ns->npools, nold = w->npools;
    struct wpool *arr = calloc((size_t)nnew + nold, sizeof(*arr));
    uint32_t *cmap = malloc((nold > 0 ? nold : 1) * sizeof(*cmap));
    uint32_t nview, ndrain = 0;

    if (arr == NULL || cmap == NULL)
        goto nomem;
    for (uint32_t i = 0; i < nnew; i++) {
        if (wpool_init(w, &arr[i], &ns->pools[i]) != KM_OK) {
            for (uint32_t k = 0; k <= i; k++)
                wpool_free(&arr[k]);
            goto nomem;
        }
    }
    nview = nnew;

    /* listening sockets go by address, whichever pool had them: a kept pool that keeps
     * its address, or a pool added (or changing protocol) on an address another pool
     * had, goes on accepting on the same socket; the main thread opened sockets only
     * for addresses that are new (ns->lfds), and the rest close */
    for (uint32_t i = 0; i < nnew; i++) {
        if (ns->lfds[i * ns->nworkers + w->id] >= 0)
            continue;
        for (uint32_t j = 0; j < w->nlive; j++) {
            struct wpool *o = &w->pools[j];
            if (o->lfd >= 0 && conf_same_listen(&o->pool->cf->listen, &arr[i].pool->cf->listen)) {
                if (listener_attach(&arr[i], listener_detach(o)) != KM_OK)
                    log_error("pool %s: worker %u cannot watch its listener after the reload",
                              arr[i].pool->cf->name, w->id);
                break;
            }
        }
    }
    for (uint32_t j = 0; j < w->nlive; j++)
        listener_close(&w->pools[j]);

    /* the live views of the old generation: kept, or draining */
    for (uint32_t j = 0; j < w->nlive; j++) {
        struct wpool *o = &w->pools[j];
        struct pool *np = snapshot_successor(ns, o->pool);
        if (np != NULL) {
            uint32_t i = (uint32_t)(np - ns->pools);
            struct wpool *n = &arr[i];
            cmap[j] = i;
            n->rand = o->rand;
            n->nclients = o->nclients;
            o->nclients = 0;
            session_close_idle(o, true);
            session_adopt(w, j, n, i, conns_compatible(o->pool->cf, n->pool->cf));
            move_conns(o, n, i);
        } else {
            cmap[j] = nview;   /* its clients, if any, drain with it, and their pinned
                                * connections */
            session_close_idle(o, true);
            session_adopt(w, j, NULL, nview, false);
        }
        /* no client left in o (kept: they moved): unless a reply is still owed on one of
         * its connections, there is nothing to drain */
        if (o->nclients == 0) {
            close_idle(o);
            if (!has_conns(o)) {
                wpool_free(o);
                continue;
            }
        }
        /* what is left of o drains, holding its generation */
        snapshot_get(os);
        o->held = os;
        reindex_conns(o, nview);
        arr[nview++] = *o;
        ndrain++;
    }
    /* views already draining from older generations go on draining */
    for (uint32_t j = w->nlive; j < nold; j++) {
        struct wpool *o = &w->pools[j];
        if (o->pool == NULL)
            continue;   /* drained */
        cmap[j] = nview;
        reindex_conns(o, nview);
        session_adopt(w, j, NULL, nview, false);
        arr[nview++] = *o;
        ndrain++;
    }

    /* clients follow their views; those of a removed pool finish (below) */
    for (struct client *cl = w->clients; cl != NULL; cl = cl->next)
        cl->c.pidx = cmap[cl->c.pidx];
    /* clients waiting for a place: the pool must still be there */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < w->ndeferred; i++) {
        uint32_t to = cmap[w->deferred[i].pidx];
        if (to < nnew) {
            w->deferred[kept] = w->deferred[i];
            w->deferred[kept++].pidx = to;
        } else {
            close(w->deferred[i].fd);
        }
    }
    w->ndeferred = kept;

    /* the listening sockets the main thread opened for this worker */
    for (uint32_t i = 0; i < nnew; i++) {
        int *fd = &ns->lfds[i * ns->nworkers + w->id];
        if (*fd < 0)
            continue;
        if (listener_attach(&arr[i], *fd) != KM_OK) {
            log_error("pool %s: worker %u cannot watch its new listener", ns->pools[i].cf->name,
                      w->id);
            close(*fd);
            arr[i].lfd = -1;
        }
        *fd = -1;
    }

    free(w->pools);
    free(cmap);
    w->pools = arr;
    w->npools = nview;
    w->nlive = nnew;
    snapshot_get(ns);
    w->snap = ns;
    snapshot_put(os);
    atomic_store_explicit(&w->adopted, ns->gen, memory_order_release);

    /* clients of pools that left: answer what is here, then go */
    for (struct client *cl = w->clients, *next; cl != NULL; cl = next) {
        next = cl->next;
        if (cl->c.pidx >= nnew)
            client_finish(cl);
    }
    w->trim_due = true;
    log_info("worker %u: configuration generation %llu adopted: %u pools, %u draining",
             w->id, (unsigned long long)ns->gen, nnew, ndrain);
    return;

nomem:
    free(arr);
    free(cmap);
    log_error("worker %u: out of memory adopting configuration generation %llu; trying again "
              "at the next safe point", w->id, (unsigned long long)ns->gen);
}

void
worker_adopt_latest(struct worker *w)
{
    struct snapshot *ns = atomic_load_explicit(&w->px->snap, memory_order_acquire);

    if (ns != NULL && ns != w->snap)
        adopt(w, ns);
}

void
worker_drain(struct worker *w)
{
    /* idle pinned connections past the cache's size */
    for (uint32_t i = 0; i < w->nlive; i++)
        session_close_idle(&w->pools[i], false);
    for (uint32_t i = w->nlive; i < w->npools; i++) {
        struct wpool *v = &w->pools[i];
        if (v->pool == NULL || v->nclients > 0)
            continue;
        session_close_idle(v, true);
        close_idle(v);
        if (has_conns(v))
            continue;   /* replies still owed */
        log_info("worker %u: pool %s of generation %llu drained", w->id, v->pool->cf->name,
                 (unsigned long long)v->held->gen);
        wpool_free(v);
        v->pool = NULL;
        w->trim_due = true;
    }
}

struct wpool *
worker_wpool_of(struct worker *w, uint64_t id)
{
    for (uint32_t i = 0; i < w->nlive; i++) {
        if (w->pools[i].pool->state->id == id)
            return &w->pools[i];
    }
    return NULL;
}
