/* src/core/pace.h: whether a busy event loop should nap between polls instead of blocking.
 *
 * A fast loop that blocks in the poll is woken for nearly every message that arrives,
 * since it has handled the last one before the next comes. Each wakeup costs the sender a
 * wakeup of another CPU and the loop a switch back in; on a virtual machine these are the
 * dearest part of a request. A loop that naps a short while after a busy pass and then
 * polls without blocking gathers many messages per wakeup, and its servers get larger
 * batches, at the price of at most one nap of added latency.
 *
 * Whether napping pays depends on the load. With 50 clients at depth 1 it cut the proxy's
 * CPU per request by a fifth and raised the throughput by 40%; with a few clients it only
 * adds latency and costs more. So the pacer measures rather than guesses: over each
 * epoch it divides the loop's CPU time by the replies it sent, keeps that cost for each
 * way, tries the other way for one epoch now and then, and naps only while napping
 * measures clearly cheaper. Under PACE_MIN_REPLIES replies an epoch it does not nap.
 *
 * A pass after a nap handles more at once, and holds the buffers of all it handles: in a
 * storm of thousands of clients each sending one request, napping made the peak memory
 * several times larger. Napping is for sustained load, so the first try waits for
 * PACE_SETTLE busy epochs in a row (a storm is over by then), and whatever the pacer
 * says, the loop does not nap while more than PACE_MAX_HELD bytes of buffers are in
 * use; it drains eagerly instead.
 *
 *   busy epoch:  1 ... 8    9 (try)    10 ... 25    26 (try)    27 ...
 *   way:         block      nap        nap          block       nap     (napping cheaper)
 *   measures:    cost[0]    cost[1]    cost[1]      cost[0]     cost[1]
 */
#ifndef KM_PACE_H
#define KM_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACE_NAP_NS      100000u   /* napping, the loop wakes at most once per 100 us */
#define PACE_EPOCH_MS    25u
#define PACE_MIN_REPLIES 500u      /* per epoch (20,000 replies/s): under it, block */
#define PACE_PROBE_EVERY 16u       /* epochs between tries of the way not taken */
#define PACE_SETTLE      8u        /* busy epochs in a row before the first try */
#define PACE_GAIN_PCT    90u       /* nap only when it costs at most 90% of blocking */
#define PACE_MAX_HELD    (8u << 20) /* bytes of buffers in use past which the loop never naps */

enum pace_policy {
    PACE_AUTO,     /* measure, and nap when it is cheaper */
    PACE_BLOCK,    /* never nap */
    PACE_NAP       /* nap after every busy pass, whatever the load */
};

struct pace {
    enum pace_policy policy;
    bool nap;              /* nap through this epoch */
    bool probing;          /* this epoch tries the way not chosen */
    uint32_t since_probe;  /* epochs since the last try */
    uint32_t busy;         /* epochs in a row at or over PACE_MIN_REPLIES, up to PACE_SETTLE */
    uint64_t cost[2];      /* CPU ns per reply, smoothed: [0] blocking, [1] napping; 0: unknown */
};

void pace_init(struct pace *p, enum pace_policy policy);
/* The end of an epoch in which the loop spent cpu_ns of CPU time and sent `replies`
 * replies; returns whether to nap through the next epoch. */
bool pace_epoch(struct pace *p, uint64_t cpu_ns, uint64_t replies);
/* The policy named name[0..len) ("auto", "block" or "nap"), or -1 if none. */
int pace_from_name(const char *name, size_t len);

#endif
