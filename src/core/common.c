/* src/core/common.c: the assertion handler. */
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>

void
km_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "keymux: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}
