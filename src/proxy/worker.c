/* src/proxy/worker.c: one event loop with its buffers, messages, pools and flush list. */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"

#include <event2/event.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

/* Idle segments kept for reuse: enough for bursts, bounded so memory returns. */
#define FREE_SEG_BYTES (8u * 1024 * 1024)
#define FREE_MSGS 1024

/* Once a second: the free lists shrink to what the last second needed, and when
 * segments went back, the allocator is asked to return its free pages to the system
 * (it keeps them in its heap otherwise). */
static void
on_tick(int fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    /* what the free lists did not need for a whole second goes back */
    bufpool_trim(&w->bp);
    msgcache_trim(&w->mc);
    conn_in_cache_trim(w);
    slab_trim(&w->client_slab);
    if (w->bp.nreleased != w->trimmed_at) {
        w->trimmed_at = w->bp.nreleased;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
}

int
worker_init(struct worker *w, struct pool *pools, uint32_t npools, uint32_t mbuf_size)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    if (w->base == NULL)
        return KM_ERROR;
    uint32_t max_free = KM_MAX(16u, FREE_SEG_BYTES / mbuf_size);
    bufpool_init(&w->bp, mbuf_size, max_free);
    msgcache_init(&w->mc, FREE_MSGS);
    slab_init(&w->client_slab, conn_alloc_size(CONN_CLIENT));
    w->pools = pools;
    w->npools = npools;
    for (uint32_t i = 0; i < npools; i++)
        pools[i].w = w;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    struct timeval tv = { 1, 0 };
    if (w->tick == NULL || event_add(w->tick, &tv) != 0)
        return KM_ERROR;
    return KM_OK;
}

void
worker_free(struct worker *w)
{
    if (w->tick != NULL)
        event_free(w->tick);
    w->tick = NULL;
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    w->spare_fd = -1;
    conn_in_cache_free(w);
    slab_destroy(&w->client_slab);
    msgcache_destroy(&w->mc);
    bufpool_destroy(&w->bp);
    if (w->base != NULL)
        event_base_free(w->base);
    w->base = NULL;
}

void
worker_mark_dirty(struct worker *w, struct conn *c)
{
    if (c->dirty || c->closing)
        return;
    c->dirty = true;
    c->dnext = w->dirty;
    w->dirty = c;
}

void
worker_unmark_dirty(struct worker *w, struct conn *c)
{
    if (!c->dirty)
        return;
    for (struct conn **pp = &w->dirty; *pp != NULL; pp = &(*pp)->dnext) {
        if (*pp == c) {
            *pp = c->dnext;
            break;
        }
    }
    c->dirty = false;
    c->dnext = NULL;
}

struct proto_ctx
worker_ctx(struct worker *w, struct pool *p)
{
    struct proto_ctx ctx = { &w->bp, &w->mc, p != NULL ? p->cf->redis_auth : NULL, NULL };
    return ctx;
}

struct proto_ctx
client_ctx(struct client *cl)
{
    struct proto_ctx ctx = worker_ctx(conn_worker(&cl->c), cl->c.pool);
    ctx.authed = &cl->c.authed;
    return ctx;
}

static void
flush(struct worker *w)
{
    while (w->dirty != NULL) {
        struct conn *c = w->dirty;
        w->dirty = c->dnext;
        c->dnext = NULL;
        c->dirty = false;
        if (c->kind == CONN_CLIENT)
            client_flush((struct client *)c);
        else
            upstream_flush((struct upstream *)c);
    }
}

void
worker_run(struct worker *w)
{
    while (!w->stop) {
        if (event_base_loop(w->base, EVLOOP_ONCE) < 0) {
            log_error("event loop failed");
            break;
        }
        flush(w);
    }
}
