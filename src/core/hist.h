/* src/core/hist.h: a latency histogram written by one thread and read by others, as
 * counters are (core/counter.h): fixed log-spaced bounds from 10 us to 10 s, one counter
 * per bucket (not cumulative: the reader sums) and the sum of the observations. */
#ifndef KM_HIST_H
#define KM_HIST_H

#include "core/counter.h"

#include <stdint.h>

/* upper bounds in microseconds; a last bucket takes what is above 10 s */
#define KM_HIST_BOUNDS                                                                    \
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,   \
    500000, 1000000, 2500000, 5000000, 10000000
#define KM_HIST_NBOUNDS 19

struct km_hist {
    struct km_ctr bucket[KM_HIST_NBOUNDS + 1];
    struct km_ctr sum_us;
};

/* Only the histogram's owner may add. */
static inline void
hist_add(struct km_hist *h, uint64_t us)
{
    static const uint32_t bound[KM_HIST_NBOUNDS] = { KM_HIST_BOUNDS };
    uint32_t lo = 0, hi = KM_HIST_NBOUNDS;

    /* the first bound >= us (KM_HIST_NBOUNDS: above them all) */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (bound[mid] < us)
            lo = mid + 1;
        else
            hi = mid;
    }
    ctr_add(&h->bucket[lo], 1);
    ctr_add(&h->sum_us, us);
}

/* The time from start_us to now_us (a wall clock that may step back: 0 then). */
static inline void
hist_since(struct km_hist *h, uint64_t now_us, uint64_t start_us)
{
    hist_add(h, now_us > start_us ? now_us - start_us : 0);
}

#endif
