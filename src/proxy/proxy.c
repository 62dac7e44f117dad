/* src/proxy/proxy.c: the process: the shared pools, the workers, their threads and listeners.
 *
 * Everything is built on the main thread before any worker thread starts (pools,
 * workers, their loops, listeners, preconnected server connections), so the start of
 * each thread orders all of it before the worker's first event. From then on a worker
 * touches only its own objects and what pool/pool.h says is shared; the main thread
 * keeps the signals, the stats port, shared listeners, the probes of ejected servers
 * (proxy/probe.c) and the freeing of retired objects (proxy_tick).
 */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"
#include "core/trim.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
proxy_init(struct proxy *px, struct conf *cf, uint32_t nworkers, uint32_t mbuf_size,
           enum pace_policy pace, struct event_base *base, char *err, size_t errlen)
{
    memset(px, 0, sizeof(*px));
    px->base = base;
    px->started_s = (int64_t)time(NULL);
    atomic_init(&px->client_ids, 0);
    atomic_init(&px->reloads, 0);
    atomic_init(&px->reload_failures, 0);
    if (pub_init(&px->pub, nworkers) != 0) {
        snprintf(err, errlen, "out of memory");
        conf_free(cf);
        return KM_ERROR;
    }
    px->pub_ready = true;
    px->workers = calloc(nworkers, sizeof(*px->workers));
    if (px->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        conf_free(cf);
        return KM_ERROR;
    }
    px->nworkers = nworkers;
    struct snapshot *snap = snapshot_build(px, cf, NULL, 1, err, errlen);
    if (snap == NULL)
        return KM_ERROR;
    atomic_store(&px->snap, snap);
    px->pools = snap->pools;
    px->npools = snap->npools;
    px->shared = snap->shared;
    for (uint32_t i = 0; i < nworkers; i++) {
        px->nready++;
        if (worker_init(&px->workers[i], px, i, mbuf_size, pace) != KM_OK) {
            snprintf(err, errlen, "cannot create the event loop of worker %u", i);
            return KM_ERROR;
        }
    }
    return KM_OK;
}

bool
proxy_listens_per_worker(const struct proxy *px, const struct conf_pool *cf)
{
#ifdef SO_REUSEPORT
    return px->nworkers == 1 || cf->listen.path == NULL;
#else
    (void)cf;
    return px->nworkers == 1;
#endif
}

int
proxy_listen(struct proxy *px, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct conf_pool *cf = px->pools[i].cf;
        const char *how;

        if (proxy_listens_per_worker(px, cf)) {
            for (uint32_t k = 0; k < px->nworkers; k++) {
                if (listener_open(&px->workers[k].pools[i], px->nworkers > 1, err, errlen) != KM_OK)
                    return KM_ERROR;
            }
            how = px->nworkers == 1 ? "" : ", a socket per worker";
        } else {
            if (listener_open_shared(&px->shared[i], err, errlen) != KM_OK)
                return KM_ERROR;
            how = ", one socket dealt to the workers";
        }
        px->nlisteners++;
        log_notice("pool %s: listening on %s (%s%s)", cf->name, cf->listen.text,
                   px->pools[i].proto->name, how);
    }
    for (uint32_t i = 0; i < px->npools; i++) {
        if (!px->pools[i].cf->preconnect)
            continue;
        for (uint32_t k = 0; k < px->nworkers; k++)
            upstream_preconnect(&px->workers[k].pools[i]);
    }
    return KM_OK;
}

int
proxy_start(struct proxy *px, char *err, size_t errlen)
{
    sigset_t all, old;
    int rc = 0;

    /* the signals keymux acts on go to the main thread: the workers block them */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker %u: %s", i, strerror(rc));
            break;
        }
        w->running = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        probe_arm(px);
    return rc == 0 ? KM_OK : KM_ERROR;
}

void
proxy_stop(struct proxy *px)
{
    const struct mail stop = { MAIL_STOP, -1, 0 };

    probe_stop(px);
    for (uint32_t i = 0; i < px->npools && px->shared != NULL; i++)
        listener_close_shared(&px->shared[i]);
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        if (!w->running)
            continue;
        /* a full mailbox drains within the worker's next wakeup */
        for (int tries = 0; mailbox_post(&w->mb, &stop) == -EAGAIN && tries < 5000; tries++) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        if (!w->running)
            continue;
        pthread_join(w->thread, NULL);
        w->running = false;
    }
}

void
proxy_free(struct proxy *px)
{
    for (uint32_t i = 0; i < px->nready; i++) {
        struct worker *w = &px->workers[i];
        /* a worker that never ran still holds what proxy_listen gave it */
        for (uint32_t k = 0; w->pools != NULL && k < w->npools; k++)
            listener_close(&w->pools[k]);
        client_close_all(w);
        upstream_close_all(w);
        worker_free(w);
    }
    free(px->workers);
    px->workers = NULL;
    px->nworkers = px->nready = 0;
    for (uint32_t i = 0; i < px->npools && px->shared != NULL; i++)
        listener_close_shared(&px->shared[i]);
    /* the main thread's reference to the current generation; every other one went with
     * the workers, so the generations are all retired now and go with the domain */
    snapshot_put(atomic_exchange(&px->snap, NULL));
    if (px->pub_ready)
        pub_destroy(&px->pub);
    px->pub_ready = false;
    px->pools = NULL;
    px->shared = NULL;
    px->npools = 0;
    if (px->reload_ev != NULL)
        event_free(px->reload_ev);
    px->reload_ev = NULL;
}

void
proxy_tick(struct proxy *px)
{
    uint64_t freed = px->pub.nfreed;

    pub_reclaim(&px->pub);
    /* old generations went: their memory goes back, as a burst's does in the workers */
    if (px->pub.nfreed != freed)
        km_trim();
}
