/* src/proxy/worker.c: one event loop with its buffers, messages, pools and flush list. */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/crash.h"
#include "core/log.h"
#include "route/route.h"

#include "core/trim.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
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
    worker_drain(w);
    if (w->bp.nreleased != w->trimmed_at || w->trim_due) {
        w->trimmed_at = w->bp.nreleased;
        w->trim_due = false;
        km_trim();
    }
}

static void
epoch_arm(struct worker *w)
{
    struct timeval tv = { 0, PACE_EPOCH_MS * 1000 };

    w->epoch_cpu_ns = km_clock_ns(CLOCK_THREAD_CPUTIME_ID);
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
    uint64_t cpu = km_clock_ns(CLOCK_THREAD_CPUTIME_ID) - w->epoch_cpu_ns;
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
wpool_init(struct worker *w, struct wpool *wp, struct pool *p)
{
    uint32_t nconn = p->cf->server_connections;

    wp->w = w;
    wp->pool = p;
    wp->lfd = -1;
    wp->rand = route_seed_value((uint64_t)(uintptr_t)wp ^ ((uint64_t)w->id << 32) ^
                                (uint64_t)km_clock_ns(CLOCK_MONOTONIC));
    wp->servers = calloc(p->nservers, sizeof(*wp->servers));
    wp->srvslot = malloc(p->nservers * sizeof(*wp->srvslot));
    if (wp->servers == NULL || wp->srvslot == NULL)
        return KM_ERROR;
    wp->st = pool_wstats(p, w->id);
    for (uint32_t i = 0; i < p->nservers; i++) {
        wp->srvslot[i] = -1;
        wp->servers[i].srv = &p->servers[i];
        wp->servers[i].st = server_wstats(&p->servers[i], w->id);
        wp->servers[i].conns = calloc(nconn, sizeof(*wp->servers[i].conns));
        if (wp->servers[i].conns == NULL)
            return KM_ERROR;
    }
    return KM_OK;
}

void
wpool_free(struct wpool *wp)
{
    if (wp->servers != NULL) {
        for (uint32_t i = 0; i < wp->pool->nservers; i++)
            free(wp->servers[i].conns);
    }
    free(wp->servers);
    free(wp->srvslot);
    wp->servers = NULL;
    wp->srvslot = NULL;
    snapshot_put(wp->held);
    wp->held = NULL;
}

/* Only wakes the loop: the clients waiting for a place are looked at after each
 * iteration (client_admit_deferred). */
static void
on_admit_timer(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Records from other threads: clients dealt from a shared listener, wake-ups (the loop
 * then passes a safe point), the order to stop. */
static void
on_mail(int fd, short what, void *arg)
{
    struct worker *w = arg;
    struct mail m;
    int rc;

    (void)fd;
    (void)what;
    /* bounded per wakeup, like every other source of work */
    for (int i = 0; i < 64 && (rc = mailbox_take(&w->mb, &m)) == 1; i++) {
        switch (m.kind) {
        case MAIL_CLIENT: {
            /* dealt by the main thread, maybe for a generation this worker has not
             * adopted yet: adopt first, then find the pool by its state */
            worker_adopt_latest(w);
            struct wpool *wp = worker_wpool_of(w, m.arg);
            if (wp != NULL)
                client_accept(wp, m.fd);
            else
                close(m.fd);
            break;
        }
        case MAIL_STOP:
            w->stop = true;
            event_base_loopbreak(w->base);
            break;
        default:
            break;
        }
    }
}

int
worker_init(struct worker *w, struct proxy *px, uint32_t id, uint32_t mbuf_size,
            enum pace_policy pace)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->px = px;
    w->spare_fd = -1;
    w->mb.rfd = w->mb.wfd = -1;
    w->base = event_base_new();
    if (w->base == NULL || mailbox_open(&w->mb) != 0)
        return KM_ERROR;
    w->mbev = event_new(w->base, w->mb.rfd, EV_READ | EV_PERSIST, on_mail, w);
    if (w->mbev == NULL || event_add(w->mbev, NULL) != 0)
        return KM_ERROR;
    uint32_t max_free = KM_MAX(16u, FREE_SEG_BYTES / mbuf_size);
    bufpool_init(&w->bp, mbuf_size, max_free);
    msgcache_init(&w->mc, FREE_MSGS);
    slab_init(&w->client_slab, conn_alloc_size(CONN_CLIENT));
    struct snapshot *snap = atomic_load(&px->snap);
    snapshot_get(snap);
    w->snap = snap;
    atomic_init(&w->adopted, snap->gen);
    w->pools = calloc(snap->npools, sizeof(*w->pools));
    if (w->pools == NULL)
        return KM_ERROR;
    w->npools = w->nlive = snap->npools;
    for (uint32_t i = 0; i < snap->npools; i++) {
        if (wpool_init(w, &w->pools[i], &snap->pools[i]) != KM_OK)
            return KM_ERROR;
    }
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    struct timeval tv = { 1, 0 };
    if (w->tick == NULL || event_add(w->tick, &tv) != 0)
        return KM_ERROR;
    pace_init(&w->pace, pace);
    w->epoch = evtimer_new(w->base, on_epoch, w);
    w->admit_tev = evtimer_new(w->base, on_admit_timer, w);
    if (w->epoch == NULL || w->admit_tev == NULL)
        return KM_ERROR;
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
    if (w->admit_tev != NULL)
        event_free(w->admit_tev);
    w->admit_tev = NULL;
    if (w->mbev != NULL)
        event_free(w->mbev);
    w->mbev = NULL;
    mailbox_close(&w->mb);
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    w->spare_fd = -1;
    if (w->pools != NULL) {
        for (uint32_t i = 0; i < w->npools; i++)
            wpool_free(&w->pools[i]);
    }
    free(w->pools);
    w->pools = NULL;
    snapshot_put(w->snap);
    w->snap = NULL;
    conn_in_cache_free(w);
    slab_destroy(&w->client_slab);
    msgcache_destroy(&w->mc);
    bufpool_destroy(&w->bp);
    if (w->base != NULL)
        event_base_free(w->base);
    w->base = NULL;
}

uint64_t
worker_clock_us(struct worker *w)
{
#ifdef KM_NO_HIST
    /* built without latency histograms (bench/: their cost, on against off): no request
     * is stamped, so none is observed */
    (void)w;
    return 0;
#else
    struct timeval tv;

    if (event_base_gettimeofday_cached(w->base, &tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
#endif
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

/* The pool's protocol counters summed over the workers, less what was counted before
 * the last `stats reset`. */
static void
counts_sum(struct pool *p, struct proto_count_values *out)
{
    struct proto_count_values base = { 0 };

    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < p->state->nworkers; i++)
        proto_counts_add(out, &pool_wstats(p, i)->counts);
    proto_counts_add(&base, &p->state->counts_base);
#define COUNT_LESS(name, what) out->name = out->name > base.name ? out->name - base.name : 0;
    PROTO_COUNTS(COUNT_LESS)
#undef COUNT_LESS
}

/* stats reset: what the workers have counted so far becomes the pool's base. Any worker
 * may do it; the base is the pool's, stored whole per counter. */
static void
worker_counts_reset(const void *arg)
{
    const struct wpool *wp = arg;
    struct proto_count_values now = { 0 };
    struct pool *p = wp->pool;

    for (uint32_t i = 0; i < p->state->nworkers; i++)
        proto_counts_add(&now, &pool_wstats(p, i)->counts);
#define COUNT_BASE(name, what) ctr_set(&p->state->counts_base.name, now.name);
    PROTO_COUNTS(COUNT_BASE)
#undef COUNT_BASE
}

/* The proxy's figures for INFO and memcached stats, summed over the workers; arg is the
 * request's wpool. */
static void
worker_self(const void *arg, struct proto_self *out)
{
    const struct wpool *wp = arg;
    const struct proxy *px = wp->w->px;
    struct pool *p = wp->pool;
    int64_t now = (int64_t)time(NULL);

    memset(out, 0, sizeof(*out));
    out->pid = (int64_t)getpid();
    out->now_s = now;
    out->uptime_s = now > px->started_s ? now - px->started_s : 0;
    /* the listeners of the generation this worker runs (px->nlisteners is the main
     * thread's, rewritten by a reload) */
    out->curr_connections = wp->w->snap->npools;
    out->total_connections = wp->w->snap->npools;
    for (uint32_t i = 0; i < px->nworkers; i++) {
        const struct worker *o = &px->workers[i];
        out->curr_connections += ctr_get(&o->curr_connections);
        out->total_connections += ctr_get(&o->total_connections);
    }
    counts_sum(p, &out->counts);
    out->pool_clients = atomic_load_explicit(&p->state->nclients, memory_order_relaxed);
    out->workers = px->nworkers;
    out->nservers = p->nservers;
    out->nlive = pool_nlive(p);
    out->pool = p->cf->name;
    out->config_gen = wp->w->snap->gen;
    out->reloads = atomic_load_explicit(&px->reloads, memory_order_relaxed);
    out->reload_failures = atomic_load_explicit(&px->reload_failures, memory_order_relaxed);
}

/* Server idx of the pool of the wpool arg, as the logs and the stats port name it. */
static const char *
worker_server_name(const void *arg, uint32_t idx)
{
    const struct pool *p = ((const struct wpool *)arg)->pool;

    return idx < p->nservers ? p->servers[idx].ident : NULL;
}

struct proto_ctx
worker_ctx(struct worker *w, struct wpool *wp)
{
    struct proto_ctx ctx = { &w->bp, &w->mc, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, false };

    if (wp != NULL) {
        ctx.auth = wp->pool->cf->redis_auth;
        ctx.db = wp->pool->cf->redis_db;
        ctx.counts = &wp->st->counts;
        ctx.self = worker_self;
        ctx.self_arg = wp;
        ctx.server_name = worker_server_name;
        ctx.counts_reset = worker_counts_reset;
        ctx.nservers = wp->pool->nservers;
        ctx.allow_flush = wp->pool->cf->allow_flush;
    }
    return ctx;
}

struct proto_ctx
client_ctx(struct client *cl)
{
    struct proto_ctx ctx = worker_ctx(conn_worker(&cl->c), conn_wpool(&cl->c));
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
        pub_quiescent(&w->px->pub, w->id);
        worker_adopt_latest(w);
        if (event_base_loop(w->base, woke != 0 ? EVLOOP_NONBLOCK : EVLOOP_ONCE) < 0) {
            log_error("event loop failed");
            break;
        }
        uint32_t n = flush(w);
        /* after the flush: a client that left in this iteration is closed by now */
        if (w->ndeferred > 0)
            client_admit_deferred(w);
        if (n > 0 && !w->epoch_on && w->pace.policy == PACE_AUTO)
            epoch_arm(w);
        if (!w->pace.nap || n == 0 || bufpool_held(&w->bp) > PACE_MAX_HELD) {
            woke = 0;
            continue;
        }
        uint64_t spent = woke != 0 ? km_clock_ns(CLOCK_MONOTONIC) - woke : 0;
        if (spent < PACE_NAP_NS) {
            struct timespec ts = { 0, (long)(PACE_NAP_NS - spent) };
            nanosleep(&ts, NULL);
        }
        woke = km_clock_ns(CLOCK_MONOTONIC);
    }
}

void *
worker_main(void *arg)
{
    struct worker *w = arg;
    int cr = crash_thread_init();

    if (cr < 0)
        log_warn("worker %u: no stack of its own for fault reports: %s", w->id, strerror(-cr));
#ifdef __linux__
    /* naps are short: let the kernel end them on time rather than up to 50 us late
     * (the slack is the thread's, so a loop that never naps keeps the default) */
    if (w->pace.policy != PACE_BLOCK)
        prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
#endif
    worker_run(w);
    for (uint32_t i = 0; i < w->npools; i++)
        listener_close(&w->pools[i]);
    client_close_all(w);
    upstream_close_all(w);
    /* nothing published is held any more: never wait for this worker again */
    pub_leave(&w->px->pub, w->id);
    crash_thread_done();
    return NULL;
}
