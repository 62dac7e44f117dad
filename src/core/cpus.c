/* src/core/cpus.c: the CPUs the process may run on. */
#define _GNU_SOURCE
#include "core/cpus.h"

#include <sched.h>
#include <unistd.h>

int
km_ncpus(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
