/* LADE_* variables into struct llm_tuning (tuning-env.h). */
#include "tools/tuning-env.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int lade_tuning_from_env(struct llm_tuning *t, char *reterr, size_t errlen)
{
    for (const char *const *k = llm_tuning_keys; *k; k++) {
        char name[64] = "LADE_";
        size_t n = 5;
        for (const char *c = *k; *c && n + 1 < sizeof(name); c++)
            name[n++] = (char)toupper((unsigned char)*c);
        name[n] = 0;
        const char *v = getenv(name);
        if (!v || !*v)
            continue;
        char why[256];
        int err = llm_tuning_set(t, *k, v, why, sizeof(why));
        if (err) {
            snprintf(reterr, errlen, "%s: %s", name, why);
            return err;
        }
    }
    return 0;
}
