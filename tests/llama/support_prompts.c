/* The shared prompt sets (support_prompts.h). */
#include "support_prompts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

char **prompts_load(const char *path, size_t limit, size_t *ret_n)
{
    FILE *f = fopen(path, "r");
    *ret_n = 0;
    if (!f)
        return NULL;
    char **out = NULL;
    size_t n = 0;
    static char line[65536];
    while (n < limit && fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *p = j ? json_string_value(json_object_get(j, "prompt")) : NULL;
        char **grown = p ? realloc(out, (n + 1) * sizeof(*out)) : NULL;
        if (grown) {
            out = grown;
            out[n++] = strdup(p);
        }
        json_decref(j);
    }
    fclose(f);
    *ret_n = n;
    return out;
}

void prompts_free(char **p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        free(p[i]);
    free(p);
}
