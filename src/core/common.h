/* src/core/common.h: status codes, always-on assertions and tiny helpers shared by every module. */
#ifndef KM_COMMON_H
#define KM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* One vocabulary of return codes. Syscall wrappers return 0 or -errno instead. */
#define KM_OK     0
#define KM_ERROR  (-1)
#define KM_AGAIN  (-2)

#define KM_VERSION "0.1.0"

#define KM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define KM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The index i of names[0..n) that equals name[0..len) (exact case), or -1 if none or
 * name is NULL: the lookup behind every "name in the config or on the command line" to
 * enum (hash, distribution, pacing policy). */
int km_name_index(const char *const *names, int n, const char *name, size_t len);

/* Write v in decimal at dst (no NUL; at most 20 bytes) and return the length: the hot
 * path's number formatting, where snprintf's parsing of a format costs more than the work. */
size_t km_u64_dec(char *dst, uint64_t v);

/* 64-bit FNV-1a of p[0..n): a quick, well-spread hash for the proxy's own tables (not a
 * placement hash: those are route/hash.c's, as twemproxy computes them). */
uint64_t km_fnv1a64(const uint8_t *p, size_t n);

/* s[0..n) as an unsigned decimal: digits only (leading zeros allowed), at least one, within
 * 64 bits. False, *v untouched, for anything else. */
bool km_u64_parse(const char *s, size_t n, uint64_t *v);

/* Report a failed invariant and abort; never compiled out, because the
 * invariants it guards protect memory. */
void km_assert_fail(const char *cond, const char *file, int line)
    __attribute__((noreturn));

#define ASSERT(c)                                              \
    do {                                                       \
        if (__builtin_expect(!(c), 0))                         \
            km_assert_fail(#c, __FILE__, __LINE__);            \
    } while (0)

#endif
