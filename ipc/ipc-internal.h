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

#include <stdarg.h>
#include <stddef.h>

/* vsnprintf into dst, control characters made spaces: messages quote
 * client strings (op, field names) and stay one line. */
void ipc_vformat_line(char *dst, size_t cap, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

struct ipc_error;
struct ipc_limits;
struct ipc_request;

/* A JSON object from text that must be valid UTF-8, duplicate keys
 * refused: 0, or -EBADMSG with bad_utf8 or bad_json in *reterr. */
int ipc_json_load(const char *text, size_t len, json_t **ret, struct ipc_error *reterr);
/* ipc_request_parse of an object already loaded (o may be changed). */
int ipc_request_from_json(json_t *o, const struct ipc_limits *lim, struct ipc_request *ret,
                          struct ipc_error *reterr);

#endif
