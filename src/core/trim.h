/* src/core/trim.h: asking the allocator to hand its free pages back to the system.
 *
 * glibc keeps what was freed in its heap; malloc_trim returns the free pages. Under a
 * sanitizer the allocator is the sanitizer's own, and glibc's trim from a thread that
 * never used glibc's heap upsets glibc's bookkeeping of its arenas (a fault or an
 * assertion at thread exit), so there it does nothing.
 */
#ifndef KM_TRIM_H
#define KM_TRIM_H

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define KM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define KM_SANITIZED 1
#endif
#endif
#if defined(__GLIBC__) && !defined(KM_SANITIZED)
#include <malloc.h>
#endif

static inline void
km_trim(void)
{
#if defined(__GLIBC__) && !defined(KM_SANITIZED)
    malloc_trim(0);
#endif
}

#endif
