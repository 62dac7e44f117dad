/* src/proxy/reload.c: SIGUSR1: the configuration file read again and published as the next
 * generation, or, on any failure, the running one left exactly as it was.
 *
 *   1. load and check the file, as -t does                       fail: nothing changed
 *   2. build the pools (proxy/snapshot.c; a kept pool and the     fail: nothing changed
 *      servers it keeps take over their state; names resolved)
 *   3. open a listening socket for every address that is new      fail: the new sockets
 *      (an address some pool already listens on keeps its socket,   close, nothing changed
 *      whichever pool it moves to)
 *   4. publish: kept pools pass their failures on to their successors, the main thread's
 *      own sockets move, px->snap = new, every worker is woken to adopt it (adopt.c)
 *
 * A reload begins only once every worker has adopted the running generation: until a
 * worker has, it still listens on the addresses of the pools that generation removed
 * (one worker listens without SO_REUSEPORT), and a pool added back on such an address
 * could not listen. The wait is a loop iteration of each worker (they are woken to
 * adopt); it is polled every millisecond, and a SIGUSR1 that comes meanwhile joins it
 * (the file is read when the reload begins). After RELOAD_WAIT_NS the reload begins
 * anyway, and a socket still held fails it as any other.
 */
#include "proxy/proxy.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RELOAD_WAIT_NS (5ull * 1000 * 1000 * 1000)

/* The pool of os that listens on the address of cf, or -1. */
static int
listener_of(const struct snapshot *os, const struct conf_pool *cf)
{
    for (uint32_t j = 0; j < os->npools; j++) {
        if (conf_same_listen(&os->pools[j].cf->listen, &cf->listen))
            return (int)j;
    }
    return -1;
}

/* Does the old pool's listening mode match the new one's (per worker or shared)? Only
 * then can its sockets be handed over. */
static bool
same_mode(const struct proxy *px, const struct conf_pool *a, const struct conf_pool *b)
{
    return proxy_listens_per_worker(px, a) == proxy_listens_per_worker(px, b);
}

/* Step 3: sockets for the addresses that are new. KM_OK, or KM_ERROR with err (what was
 * opened is closed again by snapshot_free). */
static int
open_new_listeners(struct proxy *px, const struct snapshot *os, struct snapshot *ns, char *err,
                   size_t errlen)
{
    for (uint32_t i = 0; i < ns->npools; i++) {
        struct pool *p = &ns->pools[i];
        int j = listener_of(os, p->cf);
        if (j >= 0 && same_mode(px, os->pools[j].cf, p->cf))
            continue;   /* its socket carries over */
        if (proxy_listens_per_worker(px, p->cf)) {
            for (uint32_t k = 0; k < px->nworkers; k++) {
                int fd = listener_socket(p, px->nworkers > 1, err, errlen);
                if (fd < 0)
                    return KM_ERROR;
                ns->lfds[i * ns->nworkers + k] = fd;
            }
        } else {
            int fd = listener_socket(p, false, err, errlen);
            if (fd < 0)
                return KM_ERROR;
            ns->shared[i].fd = fd;   /* watched once published */
        }
    }
    return KM_OK;
}

/* Step 4 for the main thread's own (shared) sockets: move those whose address goes on,
 * watch the new ones, close the rest. */
static void
publish_shared(struct proxy *px, struct snapshot *os, struct snapshot *ns)
{
    for (uint32_t i = 0; i < ns->npools; i++) {
        struct shared_listener *sl = &ns->shared[i];
        if (proxy_listens_per_worker(px, ns->pools[i].cf))
            continue;
        if (sl->fd >= 0) {
            int fd = sl->fd;
            if (listener_attach_shared(sl, fd) != KM_OK)
                log_error("pool %s: cannot watch its new listener", ns->pools[i].cf->name);
            continue;
        }
        int j = listener_of(os, ns->pools[i].cf);
        if (j >= 0 && os->shared[j].fd >= 0 && listener_move_shared(&os->shared[j], sl) != KM_OK)
            log_error("pool %s: cannot watch its listener after the reload",
                      ns->pools[i].cf->name);
    }
    for (uint32_t j = 0; j < os->npools; j++)
        listener_close_shared(&os->shared[j]);
}

/* What changed, a line per pool. */
static void
log_changes(const struct snapshot *os, const struct snapshot *ns)
{
    for (uint32_t i = 0; i < ns->npools; i++) {
        const struct pool *p = &ns->pools[i];
        const struct pool *o = NULL;
        for (uint32_t j = 0; j < os->npools; j++) {
            if (os->pools[j].state == p->state)
                o = &os->pools[j];
        }
        if (o == NULL) {
            log_notice("reload: pool %s added: %s on %s, %u servers", p->cf->name,
                       p->proto->name, p->cf->listen.text, p->nservers);
            continue;
        }
        uint32_t kept = 0;
        for (uint32_t k = 0; k < p->nservers; k++)
            kept += pool_server_of(o, p->servers[k].state) != NULL;
        log_notice("reload: pool %s kept: listen %s%s%s, servers %u -> %u (%u kept, %u added, "
                   "%u removed)", p->cf->name, o->cf->listen.text,
                   conf_same_listen(&o->cf->listen, &p->cf->listen) ? "" : " -> ",
                   conf_same_listen(&o->cf->listen, &p->cf->listen) ? "" : p->cf->listen.text,
                   o->nservers, p->nservers, kept, p->nservers - kept, o->nservers - kept);
    }
    for (uint32_t j = 0; j < os->npools; j++) {
        const struct pool *o = &os->pools[j];
        if (snapshot_successor(ns, o) == NULL)
            log_notice("reload: pool %s removed: its listener closes, its clients finish what "
                       "they sent", o->cf->name);
    }
}

static void reload_now(struct proxy *px);

/* Has every worker adopted generation gen? */
static bool
all_adopted(const struct proxy *px, uint64_t gen)
{
    for (uint32_t k = 0; k < px->nworkers; k++) {
        if (atomic_load_explicit(&px->workers[k].adopted, memory_order_acquire) != gen)
            return false;
    }
    return true;
}

/* Begin the waiting reload once every worker has adopted the running generation, or
 * once it has waited RELOAD_WAIT_NS (or the timer cannot be armed); else look again in a
 * millisecond. */
static void
reload_when_adopted(struct proxy *px)
{
    const struct snapshot *os = atomic_load(&px->snap);
    struct timeval tv = { 0, 1000 };
    bool adopted = all_adopted(px, os->gen);
    bool late = !adopted && km_clock_ns(CLOCK_MONOTONIC) - px->reload_wait_ns >= RELOAD_WAIT_NS;

    if (!adopted && !late && px->reload_ev != NULL && event_add(px->reload_ev, &tv) == 0)
        return;
    if (late)
        log_warn("reload: a worker has not adopted configuration generation %llu after %llu "
                 "s; reloading anyway", (unsigned long long)os->gen,
                 (unsigned long long)(RELOAD_WAIT_NS / 1000000000ull));
    px->reload_wait_ns = 0;
    reload_now(px);
}

static void
on_reload_wait(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reload_when_adopted(arg);
}

void
proxy_reload(struct proxy *px)
{
    if (px->reload_wait_ns != 0) {
        log_notice("reload: one is already waiting for the workers; it reads the file then");
        return;
    }
    if (px->reload_ev == NULL)
        px->reload_ev = evtimer_new(px->base, on_reload_wait, px);
    px->reload_wait_ns = km_clock_ns(CLOCK_MONOTONIC);
    reload_when_adopted(px);
    if (px->reload_wait_ns != 0)
        log_info("reload: waiting for every worker to adopt configuration generation %llu",
                 (unsigned long long)atomic_load(&px->snap)->gen);
}

static void
reload_now(struct proxy *px)
{
    struct snapshot *os = atomic_load(&px->snap);
    struct snapshot *ns;
    struct conf cf;
    char err[512];

    log_notice("reload: reading configuration file '%s'", px->conf_path);
    if (conf_load_file(px->conf_path, &cf, err, sizeof(err)) != KM_OK) {
        log_error("reload: configuration file '%s' is invalid: %s; keeping the running "
                  "configuration", px->conf_path, err);
        goto fail;
    }
    ns = snapshot_build(px, &cf, os, os->gen + 1, err, sizeof(err));
    if (ns == NULL) {
        log_error("reload: %s; keeping the running configuration", err);
        goto fail;
    }
    if (open_new_listeners(px, os, ns, err, sizeof(err)) != KM_OK) {
        log_error("reload: %s; keeping the running configuration", err);
        snapshot_free(ns);
        goto fail;
    }

    /* publish */
    for (uint32_t i = 0; i < os->npools; i++) {
        struct pool *succ = snapshot_successor(ns, &os->pools[i]);
        if (succ != NULL)
            pool_supersede(&os->pools[i], succ);
    }
    snapshot_get(ns);
    os->succ = ns;
    publish_shared(px, os, ns);
    atomic_store_explicit(&px->snap, ns, memory_order_release);
    px->pools = ns->pools;
    px->npools = ns->npools;
    px->shared = ns->shared;
    px->nlisteners = ns->npools;
    probe_arm(px);   /* a pool may have gained or lost auto_eject_hosts */
    const struct mail wake = { MAIL_WAKE, -1, 0 };
    for (uint32_t k = 0; k < px->nworkers; k++)
        (void)mailbox_post(&px->workers[k].mb, &wake);   /* a full pipe wakes it anyway */
    log_changes(os, ns);
    atomic_fetch_add(&px->reloads, 1);
    log_notice("reload: configuration generation %llu published: %u pools",
               (unsigned long long)ns->gen, ns->npools);
    snapshot_put(os);
    return;

fail:
    atomic_fetch_add(&px->reload_failures, 1);
}
