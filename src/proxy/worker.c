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
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

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

static uint64_t
clock_ns(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
epoch_arm(struct worker *w)
{
    struct timeval tv = { 0, PACE_EPOCH_MS * 1000 };

    w->epoch_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    w->epoch_replies = w->replies;
    w->epoch_on = event_add(w->epoch, &tv) == 0;
}

/* The end of a pacing epoch: the pacer learns what it cost, and the next epoch begins
 * only if this one saw traffic (an idle loop is not woken for it). */
static void
on_epoch(int fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t replies = w->replies - w->epoch_replies;
    uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - w->epoch_cpu_ns;
    bool was = w->pace.nap;

    (void)fd;
    (void)what;
    w->epoch_on = false;
    if (pace_epoch(&w->pace, cpu, replies) != was)
        log_debug("pacing: %s (%llu replies, %llu ns CPU each)", w->pace.nap ? "nap" : "block",
                  (unsigned long long)replies,
                  (unsigned long long)(replies > 0 ? cpu / replies : 0));
    if (replies > 0)
        epoch_arm(w);
}

int
worker_init(struct worker *w, struct pool *pools, uint32_t npools, uint32_t mbuf_size,
            enum pace_policy pace)
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
    w->started_s = (int64_t)time(NULL);
    for (uint32_t i = 0; i < npools; i++)
        pools[i].w = w;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    struct timeval tv = { 1, 0 };
    if (w->tick == NULL || event_add(w->tick, &tv) != 0)
        return KM_ERROR;
    pace_init(&w->pace, pace);
    w->epoch = evtimer_new(w->base, on_epoch, w);
    if (w->epoch == NULL)
        return KM_ERROR;
#ifdef __linux__
    /* naps are short: let the kernel end them on time rather than up to 50 us late
     * (the slack is the thread's, so a loop that never naps keeps the default) */
    if (pace != PACE_BLOCK)
        prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
#endif
    return KM_OK;
}

void
worker_free(struct worker *w)
{
    if (w->tick != NULL)
        event_free(w->tick);
    w->tick = NULL;
    if (w->epoch != NULL)
        event_free(w->epoch);
    w->epoch = NULL;
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

/* The proxy's figures for INFO and memcached stats; arg is the request's pool. */
static void
worker_self(const void *arg, struct proto_self *out)
{
    const struct pool *p = arg;
    const struct worker *w = p->w;
    int64_t now = (int64_t)time(NULL);

    memset(out, 0, sizeof(*out));
    out->pid = (int64_t)getpid();
    out->now_s = now;
    out->uptime_s = now > w->started_s ? now - w->started_s : 0;
    out->curr_connections = w->curr_connections;
    out->total_connections = w->total_connections;
    out->pool_clients = p->nclients;
    out->workers = 1;
    out->nservers = p->nservers;
    out->nlive = p->nlive;
    out->pool = p->cf->name;
    out->counts = p->st.counts;
}

/* Server idx of the pool arg, as the logs and the stats port name it. */
static const char *
worker_server_name(const void *arg, uint32_t idx)
{
    const struct pool *p = arg;

    return idx < p->nservers ? p->servers[idx].ident : NULL;
}

struct proto_ctx
worker_ctx(struct worker *w, struct pool *p)
{
    struct proto_ctx ctx = { &w->bp, &w->mc, NULL, NULL, NULL, NULL, NULL, NULL };

    if (p != NULL) {
        ctx.auth = p->cf->redis_auth;
        ctx.counts = &p->st.counts;
        ctx.self = worker_self;
        ctx.self_arg = p;
        ctx.server_name = worker_server_name;
    }
    return ctx;
}

struct proto_ctx
client_ctx(struct client *cl)
{
    struct proto_ctx ctx = worker_ctx(conn_worker(&cl->c), cl->c.pool);
    ctx.sess = &cl->sess;
    return ctx;
}

/* Write what the pass queued; returns how many connections had something. */
static uint32_t
flush(struct worker *w)
{
    uint32_t n = 0;

    while (w->dirty != NULL) {
        n++;
        struct conn *c = w->dirty;
        w->dirty = c->dnext;
        c->dnext = NULL;
        c->dirty = false;
        if (c->kind == CONN_CLIENT)
            client_flush((struct client *)c);
        else
            upstream_flush((struct upstream *)c);
    }
    return n;
}

void
worker_run(struct worker *w)
{
    uint64_t woke = 0;   /* when the last nap ended; 0: the loop blocks in the poll */

    while (!w->stop) {
        if (event_base_loop(w->base, woke != 0 ? EVLOOP_NONBLOCK : EVLOOP_ONCE) < 0) {
            log_error("event loop failed");
            break;
        }
        uint32_t n = flush(w);
        if (n > 0 && !w->epoch_on && w->pace.policy == PACE_AUTO)
            epoch_arm(w);
        if (!w->pace.nap || n == 0 || bufpool_held(&w->bp) > PACE_MAX_HELD) {
            woke = 0;
            continue;
        }
        uint64_t spent = woke != 0 ? clock_ns(CLOCK_MONOTONIC) - woke : 0;
        if (spent < PACE_NAP_NS) {
            struct timespec ts = { 0, (long)(PACE_NAP_NS - spent) };
            nanosleep(&ts, NULL);
        }
        woke = clock_ns(CLOCK_MONOTONIC);
    }
}
