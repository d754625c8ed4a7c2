/* daemon: the real engine on llama/ and decoding/. Placeholder until the
 * model and the decoder land: see engine.h for the contract and
 * docs/protocol.md ("Engine seam") for what implementing it takes. */
#include <errno.h>

#include "daemon/engine.h"

int srv_engine_llama_new(const struct conf *cf, struct srv_engine *ret)
{
    return -EOPNOTSUPP;
}
