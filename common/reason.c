/*
 * common/reason.c: the kind of a decision reason, for counting decisions
 * (status, shard stats, the audit) without one line per dedup group.
 */
#include "common/wp.h"

#include <string.h>

size_t wp_reason_kind_len(const char *reason)
{
    static const char *const group_kinds[] = {"near", "semantic"};
    if (reason == NULL)
        return 0;
    size_t n = strlen(reason);
    for (size_t k = 0; k < sizeof group_kinds / sizeof group_kinds[0]; k++) {
        size_t m = strlen(group_kinds[k]);
        if (n <= m + 1 || strncmp(reason, group_kinds[k], m) != 0 || reason[m] != ':')
            continue;
        size_t i = m + 1;
        while (i < n && reason[i] >= '0' && reason[i] <= '9')
            i++;
        if (i == n)
            return m;
    }
    return n;
}
