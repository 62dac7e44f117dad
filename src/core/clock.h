/* src/core/clock.h: the clocks: monotonic milliseconds for timeouts, wall time for stats. */
#ifndef KM_CLOCK_H
#define KM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (timeouts, retry times, deadlines). */
uint64_t km_now_ms(void);
/* Wall clock in microseconds since the epoch (timestamps shown to operators). */
int64_t km_now_us_wall(void);
/* Nanoseconds of clock id (CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID, ...); 0 when the
 * system has no such clock. */
uint64_t km_clock_ns(clockid_t id);

#endif
