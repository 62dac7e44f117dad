/* src/core/common.c: the assertion handler and the name-to-enum lookup. */
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
km_name_index(const char *const *names, int n, const char *name, size_t len)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        if (names[i] != NULL && strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return i;
    }
    return -1;
}

uint64_t
km_fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

size_t
km_u64_dec(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

bool
km_u64_parse(const char *s, size_t n, uint64_t *v)
{
    uint64_t acc = 0;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *v = acc;
    return true;
}

void
km_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "keymux: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}
