/* src/core/cpus.h: how many CPUs this process may run on (for --workers=auto). */
#ifndef KM_CPUS_H
#define KM_CPUS_H

/* The CPUs in the process's affinity mask where the system tells it, else the CPUs
 * online; at least 1. */
int km_ncpus(void);

#endif
