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

void
km_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "keymux: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}
