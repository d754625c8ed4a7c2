/* ipc: helpers shared by the files of this folder only. */
#ifndef LADE_IPC_IPC_INTERNAL_H
#define LADE_IPC_IPC_INTERNAL_H

#include <stdlib.h>

#include <jansson.h>

static inline void ipc_freep(void *p)
{
    free(*(void **)p);
}

static inline void ipc_json_decrefp(json_t **p)
{
    json_decref(*p);
}

/* Memory freed and json references dropped when the variable leaves scope. */
#define ipc_cleanup_free __attribute__((cleanup(ipc_freep)))
#define ipc_cleanup_json __attribute__((cleanup(ipc_json_decrefp)))

#endif
