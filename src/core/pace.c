/* src/core/pace.c: choose between blocking and napping by measured CPU per reply. */
#include "core/pace.h"

#include "core/common.h"

#include <string.h>

void
pace_init(struct pace *p, enum pace_policy policy)
{
    memset(p, 0, sizeof(*p));
    p->policy = policy;
    p->nap = policy == PACE_NAP;
}

static bool
nap_cheaper(const struct pace *p)
{
    return p->cost[0] != 0 && p->cost[1] != 0 &&
           p->cost[1] * 100 <= p->cost[0] * PACE_GAIN_PCT;
}

bool
pace_epoch(struct pace *p, uint64_t cpu_ns, uint64_t replies)
{
    if (p->policy != PACE_AUTO)
        return p->nap;
    /* Light load: latency first, and what was learnt belongs to another load. A nap
     * slows a closed loop of few clients, so while napping only a load far under the
     * floor counts as light; a smaller drop is napping's own cost, and measured. */
    if (replies < (p->nap ? PACE_MIN_REPLIES / 4 : PACE_MIN_REPLIES)) {
        p->nap = false;
        p->probing = false;
        p->since_probe = 0;
        p->busy = 0;
        p->cost[0] = p->cost[1] = 0;
        return false;
    }
    if (p->busy < PACE_SETTLE)
        p->busy++;

    uint64_t sample = cpu_ns / replies;
    if (sample == 0)
        sample = 1;
    uint64_t *c = &p->cost[p->nap];
    if (*c == 0)
        *c = sample;
    else if (p->probing)
        *c = (*c + sample) / 2;          /* last measured long ago: weigh the new one more */
    else
        *c = (*c * 3 + sample) / 4;

    if (p->probing) {
        p->probing = false;
        p->since_probe = 0;
        p->nap = nap_cheaper(p);
        return p->nap;
    }
    if (p->busy < PACE_SETTLE)
        return p->nap;
    if (p->cost[!p->nap] == 0 || ++p->since_probe >= PACE_PROBE_EVERY) {
        p->probing = true;
        p->nap = !p->nap;
    }
    return p->nap;
}

static const char *const pace_names[] = {
    [PACE_AUTO] = "auto",
    [PACE_BLOCK] = "block",
    [PACE_NAP] = "nap",
};

int
pace_from_name(const char *name, size_t len)
{
    return km_name_index(pace_names, (int)KM_ARRAY_LEN(pace_names), name, len);
}
