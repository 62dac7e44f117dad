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

void
km_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "keymux: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}
