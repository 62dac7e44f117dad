/* src/proxy/proxy.h: the workers, their connections and the request path between them.
 *
 *   main thread: signals, stats port, log, pid file; builds the pools (shared, immutable)
 *     |
 *     +-- worker 0 .. worker N-1: each a thread with its own event loop, buffers, free
 *         lists, pacer, listeners (SO_REUSEPORT) and server connections; a client lives
 *         on one worker for its whole life. A worker's view of a pool is its wpool, of a
 *         server its wserver: connections and counters that only that worker writes.
 *
 * The request path inside one worker:
 *
 *               client FIFO (replies leave only from the head, in request order)
 *   client ---> [req1 done][req2 ...][req3 ...]
 *     | read -> parse -> forward
 *     v
 *   forward: plan -> route -> one server, or one fragment per server
 *     |
 *     v                      send queue             in-flight FIFO
 *   upstream (server conn): [m4][m5] --writev--> [m1][m2][m3] --reply--> pair with head
 *                                                              -> complete -> merge -> client
 *
 * A message sits in its client's FIFO (cnext) and, while it is with a server, in one
 * upstream's send queue or in-flight FIFO (snext). A fragment is only in an upstream;
 * its parent is in the client FIFO. When a client goes away its messages stay until
 * their servers answer (client = NULL), then they are freed.
 */
#ifndef KM_PROXY_H
#define KM_PROXY_H

#include "core/buf.h"
#include "core/common.h"
#include "core/counter.h"
#include "core/mailbox.h"
#include "core/pace.h"
#include "core/publish.h"
#include "core/slab.h"
#include "pool/pool.h"
#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/reader.h"
#include "proxy/snapshot.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct event_base;
struct event;
struct probe;

enum conn_kind { CONN_CLIENT, CONN_SERVER };

/* Input side of a connection: only a connection with bytes to parse has one, so an
 * idle client costs its socket and a few words. */
struct conn_in {
    struct reader rd;          /* bytes read and the tokenizer over them */
    struct conn_in *next;      /* worker's free list */
};

/* What client and server connections share: the socket, its event, input and output. */
struct conn {
    int fd;
    uint32_t pidx;             /* its pool's index: its worker's view is w->pools[pidx] */
    uint8_t kind;              /* enum conn_kind */
    bool dirty;                /* on the worker's flush list */
    bool wev_on;               /* watching for writability (socket was full / connecting) */
    bool rev_on;               /* watching for readability */
    bool eof;                  /* peer closed its side */
    bool closing;              /* being torn down */
    bool quit;                 /* client: close once the FIFO drains */
    bool overflow;             /* client: replies queued past client_output_limit: close */
    struct conn *dnext;        /* flush list link */
    struct worker *w;          /* its worker */
    struct conn_in *in;        /* input state, NULL while idle (clients) */
    uint64_t wpos;             /* bytes of the head message already written */
    /* the owning struct (client, upstream) is followed by the storage of the
     * connection's event: see conn_ev() */
};

struct client {
    struct conn c;
    struct proto_session sess; /* AUTH, CLIENT SETNAME, ...: what the protocol keeps */
    struct msg *head, *tail;   /* reply FIFO */
    struct pinned *pin;        /* Redis: its transaction, WATCH or blocking command
                                  (proxy/session.c); NULL for all other clients */
    struct subscriber *sub;    /* Redis: its channels, patterns and subscription
                                  connections (proxy/pubsub.c); NULL when it has none */
    uint64_t queued;           /* reply bytes complete and not yet written */
    struct client *prev, *next;   /* the worker's list of clients */
    /* followed by the storage of c.ev (event_get_struct_event_size() bytes) */
};

struct upstream {
    struct conn c;
    struct wserver *ws;        /* its worker's view of the server */
    struct server *srv;        /* the server (ws->srv) */
    uint32_t slot;             /* index in ws->conns */
    struct msg *sq_head, *sq_tail;   /* to send */
    struct msg *if_head, *if_tail;   /* sent, awaiting replies */
    uint32_t ninflight;
    uint32_t nghosts;          /* timed-out requests still in the FIFO */
    bool connecting;           /* non-blocking connect under way */
    bool pinned;               /* held for one client at a time (proxy/session.c), not one
                                  of ws->conns */
    bool cached;               /* pinned and idle, in ws->idle */
    bool sub;                  /* pinned to a client's subscriptions (proxy/pubsub.c): what
                                  it reads are pushes, not replies in request order */
    struct client *owner;      /* pinned: the client it serves now, NULL when idle */
    struct upstream *inext;    /* ws->idle link */
    struct event *tev;         /* timeout of the oldest request in flight (or of the connect) */
    uint64_t tev_deadline;     /* monotonic ms it is armed for, 0 when not armed */
};

/* A worker's side of one server: its connections and counters. Only its worker touches
 * conns; the stats port reads st. */
struct wserver {
    struct server *srv;        /* the shared server: address, name, health */
    struct upstream **conns;   /* up to server_connections live connections */
    uint32_t next;             /* round-robin cursor over conns */
    struct upstream *idle;     /* pinned connections left clean, for the next client */
    uint32_t nidle;
    struct server_stats *st;   /* this worker's counters of the server (in its state) */
};

/* A worker's side of one pool. */
struct wpool {
    struct worker *w;          /* the worker */
    struct pool *pool;         /* the shared pool */
    struct wserver *servers;   /* one per pool server, in config order */
    int32_t *srvslot;          /* scratch for splitting: server -> fragment, -1 */
    uint64_t rand;             /* the random distribution's state in this worker */
    int lfd;                   /* this worker's listening socket, -1 when none */
    struct event *lev;         /* its event */
    struct pool_stats *st;     /* this worker's counters of the pool (in its state) */
    uint32_t nclients;         /* this worker's clients in this view */
    struct snapshot *held;     /* a draining view (its pool left the configuration, or it
                                  keeps connections a reload did not hand over): the
                                  generation its pool belongs to, a reference; NULL for a
                                  view of the current generation */
};

/* A client's pinned server connection and what it still has to send on it. */
struct pinned {
    struct upstream *u;        /* NULL until a server is fixed, or after it was lost */
    struct msg *held, *held_tail;   /* keyless commands queued in a transaction before
                                       its server was known (copies; linked by snext) */
    uint32_t nheld;
    uint64_t held_bytes;
    bool multi_sent;           /* the transaction's MULTI has gone on u */
    bool watch_lost;           /* u was lost while watching: EXEC answers nil */
    bool multi_lost;           /* u was lost inside the transaction: what is queued after
                                  gets an error, EXEC answers EXECABORT */
    struct msg *stall;         /* a request that takes u once the client's earlier
                                  requests are answered (proxy/order.c); NULL when none */
    struct msg *scan;          /* while stall waits: the client's first request not yet
                                  answered (stall itself once all are) */
};

struct proxy;

struct worker {
    uint32_t id;               /* 0 .. nworkers-1 */
    struct proxy *px;          /* the process: shared pools, the other workers */
    struct event_base *base;
    struct bufpool bp;
    struct msgcache mc;
    struct snapshot *snap;     /* the generation adopted (a reference) */
    _Atomic uint64_t adopted;  /* snap->gen: stored by this worker (release) once it has
                                  adopted snap, loaded by the main thread before a reload */
    struct wpool *pools;       /* [0..nlive): one per pool of snap, in config order; then
                                  the draining views of older generations (proxy/adopt.c) */
    uint32_t npools;
    uint32_t nlive;
    struct conn *dirty;        /* connections with output to flush after this loop iteration */
    bool stop;                 /* leave the loop */
    int spare_fd;              /* kept open to shed a connection when out of descriptors */
    struct event *tick;        /* once a second: hand freed memory back to the system */
    struct conn_in *free_in;   /* idle input states for reuse */
    uint32_t nfree_in;
    uint32_t low_in;           /* fewest idle input states since the last tick */
    uint64_t trimmed_at;       /* bp.nreleased at the last trim */
    bool trim_due;             /* a generation was adopted or drained since the last trim */
    struct client *clients;    /* every open client */
    struct slab client_slab;   /* where clients live (see core/slab.h) */
    struct km_ctr total_connections;   /* connections accepted or made (stats) */
    struct km_ctr curr_connections;    /* open now (stats) */
    uint64_t replies;          /* requests answered (and retired) so far */
    struct pace pace;          /* block or nap between polls (see core/pace.h) */
    struct event *epoch;       /* ends a pacing epoch; armed only while there is traffic */
    bool epoch_on;
    uint64_t epoch_cpu_ns;     /* CPU time and replies when the epoch began */
    uint64_t epoch_replies;
    struct {
        int fd;
        uint32_t pidx;
        uint64_t until_ns;     /* monotonic: refused if there is still no room then */
    } deferred[64];            /* clients over client_connections, looked at again at the
                                  end of each loop iteration (client_admit_deferred) */
    uint32_t ndeferred;
    struct event *admit_tev;   /* wakes the loop to look at them again */
    struct mailbox mb;         /* what other threads post to this worker */
    struct event *mbev;        /* watches mb */
    pthread_t thread;
    bool running;              /* the thread was started (and not yet joined) */
};

/* A listening socket the main thread accepts on and deals to the workers in turn: a
 * unix socket (one socket, no thundering herd), or TCP where there is no SO_REUSEPORT. */
struct shared_listener {
    struct proxy *px;
    struct snapshot *snap;     /* the generation whose pool it serves */
    uint32_t pidx;             /* the pool, in snap */
    int fd;                    /* -1 where the workers listen themselves */
    struct event *ev;          /* on the main thread's loop */
    int spare_fd;              /* shed a connection with it when out of descriptors */
    uint32_t next;             /* the worker the next client goes to */
};

/* The process: the shared pools and the workers that serve them. */
struct proxy {
    _Atomic(struct snapshot *) snap;  /* the current generation (proxy/snapshot.h): stored
                                         by the main thread, loaded by the workers */
    struct pool *pools;        /* the main thread's view of snap's pools */
    uint32_t npools;
    struct worker *workers;
    uint32_t nworkers;
    uint32_t nready;           /* workers set up (worker_init called) */
    struct pub_domain pub;     /* one reader per worker */
    _Atomic uint64_t client_ids;   /* the last CLIENT ID given, all workers */
    int64_t started_s;         /* unix time at start, for uptime */
    uint32_t nlisteners;       /* listening addresses open (counted as connections, as
                                  twemproxy does: once per address, whatever the workers) */
    struct shared_listener *shared;   /* snap's, one per pool; fd -1 where the workers
                                         listen */
    struct event_base *base;   /* the main thread's loop */
    bool pub_ready;
    const char *conf_path;     /* the file SIGUSR1 reloads */
    _Atomic uint64_t reloads;  /* done (main thread writes, any thread reads) */
    _Atomic uint64_t reload_failures;
    struct event *reload_ev;   /* main thread: a reload waiting for every worker to adopt
                                  the running generation (proxy/reload.c) */
    uint64_t reload_wait_ns;   /* monotonic: when that wait began; 0 while none waits */
    struct event *probe_ev;    /* main thread: the look for ejected servers to probe, while
                                  a pool has auto_eject_hosts (proxy/probe.c) */
    struct probe *probes;      /* main thread: the probes in flight */
};

/* proxy.c: the process */
/* Build the pools of cf (shared, resolved: cf is taken over and left empty) as the first
 * generation, and nworkers workers with their views of them, serving on their own loops;
 * base is the main thread's loop (signals, stats, shared listeners). Nothing runs yet.
 * KM_OK, or KM_ERROR with a message in err (px is then for proxy_free). */
int proxy_init(struct proxy *px, struct conf *cf, uint32_t nworkers, uint32_t mbuf_size,
               enum pace_policy pace, struct event_base *base, char *err, size_t errlen);
/* Whether pool cf's workers each listen with a socket of their own (one worker, or TCP
 * with SO_REUSEPORT), rather than on one socket the main thread deals from. */
bool proxy_listens_per_worker(const struct proxy *px, const struct conf_pool *cf);
/* Listen on every pool's address: with one worker, or for TCP with SO_REUSEPORT, each
 * worker has its own socket and the kernel spreads the connections; a unix socket
 * (or TCP elsewhere) is one socket the main thread accepts on and deals in turn.
 * Then preconnect where asked. KM_OK, or KM_ERROR with a message in err. */
int proxy_listen(struct proxy *px, char *err, size_t errlen);
/* Start the workers' threads (signals stay with the calling thread). KM_OK or KM_ERROR. */
int proxy_start(struct proxy *px, char *err, size_t errlen);
/* Ask every worker to stop, wait for each: its clients and server connections are
 * closed and its listeners too. */
void proxy_stop(struct proxy *px);
/* Free what proxy_init built (after proxy_stop). */
void proxy_free(struct proxy *px);
/* The main thread's once-a-second work: free what the workers have all let go of. */
void proxy_tick(struct proxy *px);

/* probe.c: ejected servers probed before they rejoin the ring */
/* Look for ejected servers to probe every 100 ms while a pool of px->pools has
 * auto_eject_hosts; none otherwise. Called at start and when a reload publishes (the
 * probes in flight go on: each finds its server in px->pools when it ends). Main thread. */
void probe_arm(struct proxy *px);
/* Stop looking and end the probes in flight, their servers left as they are. Main
 * thread, before px->base is freed. */
void probe_stop(struct proxy *px);

/* reload.c: SIGUSR1 */
/* Load px->conf_path again, checked as -t checks it, and publish it as the next
 * generation, once every worker has adopted the running one (until then the reload waits
 * on a short timer, and a SIGUSR1 meanwhile joins it): kept pools go on with their
 * clients and the connections to the servers they keep, added pools listen, removed
 * pools stop listening and drain (see
 * proxy/adopt.c). On any failure (the file, a name to resolve, an address to listen on)
 * the running configuration is left as it was, the reason logged and the failure
 * counted (when the reload waited, that is after this returns). Main thread only. */
void proxy_reload(struct proxy *px);

/* adopt.c: a worker takes a new generation */
/* If the main thread has published a generation w has not adopted yet, adopt it now:
 * call at a safe point (between events). */
void worker_adopt_latest(struct worker *w);
/* Close the draining views of w that have nothing left to finish (once a second). */
void worker_drain(struct worker *w);
/* The live view of w whose pool has state id `id`, NULL when none (the pool was removed). */
struct wpool *worker_wpool_of(struct worker *w, uint64_t id);

/* worker.c */
/* Set up worker id of px, with a view of each of px's pools. KM_OK or KM_ERROR. */
int worker_init(struct worker *w, struct proxy *px, uint32_t id, uint32_t mbuf_size,
                enum pace_policy pace);
void worker_free(struct worker *w);
/* Set up w's view of pool p (no listener, no connection yet). KM_OK or KM_ERROR. */
int wpool_init(struct worker *w, struct wpool *wp, struct pool *p);
/* Free what wpool_init made, and a draining view's reference to its generation. */
void wpool_free(struct wpool *wp);
/* The worker thread's body: run the loop until told to stop, then close everything the
 * worker holds (listeners, clients, server connections). */
void *worker_main(void *arg);
/* Run the loop: each iteration handles the ready events, then flushes every connection
 * marked dirty, so replies and requests queued by one iteration leave in one writev.
 * While the pacer says so, a pass that flushed something is followed by a nap (so that
 * passes start at most PACE_NAP_NS apart) and a poll that does not block. Between
 * iterations the worker is at a safe point (core/publish.h). */
void worker_run(struct worker *w);
void worker_mark_dirty(struct worker *w, struct conn *c);
void worker_unmark_dirty(struct worker *w, struct conn *c);
struct proto_ctx worker_ctx(struct worker *w, struct wpool *wp);
/* Wall-clock microseconds for latencies: the time libevent cached when the poll
 * returned while in a callback, else read now. A step of the clock makes one latency
 * wrong, never negative (callers clamp at 0). 0 in a build with -DKM_NO_HIST: nothing
 * is observed then. */
uint64_t worker_clock_us(struct worker *w);
/* The context for requests of client cl (knows its session). */
struct proto_ctx client_ctx(struct client *cl);

/* conn.c: shared read / parse / write machinery */
/* Bytes to allocate for a connection of this kind, its event included. */
size_t conn_alloc_size(enum conn_kind kind);
/* Set up c's event (storage right after its struct) and watch reads. */
int conn_events(struct conn *c);

static inline struct worker *
conn_worker(const struct conn *c)
{
    return c->w;
}

/* The connection's worker's view of its pool. */
static inline struct wpool *
conn_wpool(const struct conn *c)
{
    return &c->w->pools[c->pidx];
}

static inline struct pool *
conn_pool(const struct conn *c)
{
    return conn_wpool(c)->pool;
}

/* Event callbacks, chosen by connection kind. */
void client_event(int fd, short what, void *arg);
void upstream_event(int fd, short what, void *arg);
/* Give c an input state now (server connections keep theirs). KM_OK or KM_ERROR. */
int conn_in_attach(struct conn *c);
void conn_stop_reading(struct conn *c);
/* Watch reads again after conn_stop_reading. */
void conn_start_reading(struct conn *c);
void conn_close_fd(struct conn *c);
void conn_in_cache_free(struct worker *w);
/* Free the idle input states not needed since the last call. */
void conn_in_cache_trim(struct worker *w);
/* Read what is available (bounded per wakeup) and hand each complete message to done().
 * Returns KM_OK, KM_ERROR (read error or fatal parse error; see *perr) or the EOF flag. */
int conn_read(struct conn *c, bool is_req, const struct reader_ops *ops);
/* What a reader callback answers after handling a message: stop once c is being closed. */
static inline int
conn_go_on(const struct conn *c)
{
    return c->closing ? KM_ERROR : KM_OK;
}
/* writev that reports 0 for a full socket (and arms the write event), -1 on error. */
ssize_t conn_writev(struct conn *c, const struct iovec *iov, int n);
void conn_want_write(struct conn *c, bool on);

/* listener.c */
/* Open the worker's listener for wp's pool (its own socket) and watch it; shared_port
 * sets SO_REUSEPORT so that every worker may listen on the address. KM_OK, or KM_ERROR
 * with a message in err. */
int listener_open(struct wpool *wp, bool shared_port, char *err, size_t errlen);
void listener_close(struct wpool *wp);
/* A listening socket for p's address, not watched yet (a reload opens them before it
 * publishes): the descriptor, or -errno with a message in err. */
int listener_socket(const struct pool *p, bool shared_port, char *err, size_t errlen);
/* Watch listening socket fd as wp's (wp->lfd = fd). KM_OK or KM_ERROR. */
int listener_attach(struct wpool *wp, int fd);
/* Stop watching wp's listening socket and hand it back, open; -1 when none. */
int listener_detach(struct wpool *wp);
/* Open sl's pool's one socket on the main thread's loop: each client accepted there is
 * dealt to the next worker. KM_OK, or KM_ERROR with a message in err. */
int listener_open_shared(struct shared_listener *sl, char *err, size_t errlen);
/* Watch listening socket fd as sl's. KM_OK or KM_ERROR. */
int listener_attach_shared(struct shared_listener *sl, int fd);
/* A reload: the socket of from goes on accepting as to's. KM_OK or KM_ERROR. */
int listener_move_shared(struct shared_listener *from, struct shared_listener *to);
void listener_close_shared(struct shared_listener *sl);

/* client.c */
void client_accept(struct wpool *wp, int fd);
/* The end of a loop iteration: admit or refuse the clients that found client_connections
 * reached (a client that left in the same iteration has made room by now). */
void client_admit_deferred(struct worker *w);
/* The request m of client cl is complete (reply attached): count its bytes against the
 * client's output limit and schedule a write. */
void client_reply_ready(struct client *cl, struct msg *m);
/* Append m, complete (a pub/sub push), to cl's reply FIFO, as client_reply_ready counts it. */
void client_push(struct client *cl, struct msg *m);
int client_flush(struct client *cl);
void client_close_all(struct worker *w);
/* The client's pool left the configuration: what it has sent and is already here is
 * read and answered, then nothing more is read, and it is closed once its replies are
 * written. */
void client_finish(struct client *cl);

/* upstream.c */
/* Queue request m (whole, or a fragment) on a connection to server ws of view wp,
 * connecting if needed. */
void upstream_send(struct wpool *wp, struct wserver *ws, struct msg *m);
int upstream_flush(struct upstream *u);
/* Open every connection of every server of wp now (preconnect). */
void upstream_preconnect(struct wpool *wp);
void upstream_close_all(struct worker *w);
/* True while u has requests to send or replies owed. */
bool upstream_busy(const struct upstream *u);
/* Close u, which is not busy. */
void upstream_close(struct upstream *u);
/* Queue m on connection u itself. */
void upstream_queue(struct upstream *u, struct msg *m);
/* A pinned connection to server ws of view wp (connecting), NULL with errno. */
struct upstream *upstream_open_pinned(struct wpool *wp, struct wserver *ws);
/* Close u now, busy or not: what it still owes is answered with an error. Not a failure
 * of its server. */
void upstream_abandon(struct upstream *u, const char *reason);
/* The request at the head of u's in-flight FIFO, taken off it now that its reply is in
 * (u's timer follows the next one). */
struct msg *upstream_pop_reply(struct upstream *u);

/* session.c: Redis transactions, WATCH and blocking commands on pinned connections */
/* Whether m (planned) belongs to cl's session rather than to the shared connections. */
static inline bool
session_takes(const struct client *cl, const struct msg *m)
{
    return cl->pin != NULL || m->plan == PLAN_SESSION || m->in_multi || m->blocking;
}
/* Serve m on cl's pinned connection, taking one where needed (or answer it here). */
void session_forward(struct client *cl, struct msg *m);
/* Whether a blocking command of cl is with its server now. */
bool session_blocked(const struct client *cl);
/* cl is closing: its pinned connection goes back clean to the idle cache, or closes. */
void session_release(struct client *cl);
/* A reply came on pinned connection u: hand u back once its client's session is over. */
void session_after_reply(struct upstream *u);
/* u, pinned to a client, failed or closes: the client's session forgets it (an open
 * transaction will abort, a WATCH makes EXEC answer nil). */
void session_conn_lost(struct upstream *u);
/* Close the idle pinned connections of wp (all of them, or those past the cache size). */
void session_close_idle(struct wpool *wp, bool all);
/* One more pinned connection for pool p, under its max_pinned_connections: false past it,
 * with the reason in why (logged). session_unreserve gives one back. */
bool session_reserve(struct pool *p, char *why, size_t whylen);
void session_unreserve(struct pool *p);
/* A reload: the pinned connections of the clients of old view o (index oidx) follow
 * them to view n (index nidx) of the new generation where they can serve it (same
 * server, same AUTH and SELECT: compatible), and are lost otherwise; n NULL: the pool
 * was removed and its clients drain in view nidx. */
void session_adopt(struct worker *w, uint32_t oidx, struct wpool *n, uint32_t nidx,
                   bool compatible);

/* pubsub.c: Redis pub/sub on connections pinned to a subscribed client */
/* Serve m (PLAN_PUBSUB). */
void pubsub_forward(struct client *cl, struct msg *m);
/* cl is closing: its subscription connections close, its pending confirmations go. */
void pubsub_release(struct client *cl);
/* u, a subscription connection, failed or closes: the client's subscriptions end with an
 * error it sees, and it is closed. */
void pubsub_conn_lost(struct upstream *u);
/* A reload (as session_adopt): the subscription connections of the clients of old view
 * oidx follow them to n where its servers and placement are unchanged; elsewhere the
 * subscriptions end, as the channels may now map to other servers. */
void pubsub_adopt(struct worker *w, uint32_t oidx, struct wpool *n, uint32_t nidx,
                  bool compatible);
/* The reader callbacks of subscription connections. */
extern const struct reader_ops pubsub_reader_ops;

/* The connection cl has pinned to server idx, which everything cl sends that server
 * takes while it holds it (proxy/order.c); NULL when none. */
static inline struct upstream *
session_conn(const struct client *cl, uint32_t idx)
{
    struct upstream *u = cl != NULL && cl->pin != NULL ? cl->pin->u : NULL;

    return u != NULL && u->srv->idx == idx ? u : NULL;
}

/* order.c: a client's requests to a server in its order, across its connections */
/* Whether a request of cl waits for the answers to the ones before it. */
static inline bool
order_holding(const struct client *cl)
{
    return cl->pin != NULL && cl->pin->stall != NULL;
}
/* Whether every request cl sent before m (in its FIFO) is answered. */
bool order_answered_before(const struct client *cl, const struct msg *m);
/* m (planned, in cl's FIFO; cl->pin made) waits for the answers to the requests before
 * it; reading pauses. What cl sends meanwhile is kept unplanned (m->waiting). */
void order_hold(struct client *cl, struct msg *m);
/* A request of cl, held behind, was answered: cl is flushed once the wait can end. */
void order_replied(struct client *cl);
/* client_flush, before it retires anything: if the requests before the waiting one are
 * answered, send it and plan and send the ones read after it; reading goes on. */
void order_resume(struct client *cl);

/* forward.c */
#define FORWARD_CROSSSLOT "Keys in request don't hash to the same server"
void forward_request(struct client *cl, struct msg *m);
/* A planned request that leaves the proxy, routed as its plan says (shared connections). */
void forward_route(struct client *cl, struct msg *m);
/* The one server all of m's keys map to; -3 when several, -1 when none is live, -2 out of
 * memory, -4 when m has no key. */
int forward_keys_server(struct wpool *wp, const struct msg *m);
/* Send m (whole, as the client wrote it) on connection u. */
void forward_send_on(struct worker *w, struct wpool *wp, struct msg *m, struct upstream *u);
/* Answer m with reply r made here (NULL: out of memory, answered so). */
void forward_answer(struct client *cl, struct msg *m, struct msg *r);
/* Answer m with "-<code> <reason>" (code NULL: ERR) made here. */
void forward_reply_error(struct client *cl, struct msg *m, const char *code, const char *reason);
/* m (a request or fragment) got its reply (or an error reply): finish it. */
void forward_complete(struct worker *w, struct msg *m);
/* Answer m with an error reply made here ("Connection refused") and finish it. */
void forward_fail(struct worker *w, struct wpool *wp, struct msg *m, const char *reason);
/* The server pub/sub channel name (len bytes) lives on: routed like a key, and in a pool
 * of random distribution by a choice made from the name, so that it is always the same;
 * -1 when no server is live. */
int forward_channel_server(struct wpool *wp, const uint8_t *name, size_t len);

#endif
