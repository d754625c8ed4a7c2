/* daemon: the real engine on llama/ and decoding/. Placeholder until the
 * lead wires it; laded without --fake-engine fails at start with
 * "Failed to load the model: Operation not supported".
 *
 * What implementing it takes (contract in engine.h):
 * - srv_engine_llama_new: load the GGUF from cf->model (path,
 *   context_length, kv_cache_type, tokenizer) on cf->device, build the
 *   dec session with caps from cf->lookahead/cf->limits, fill a
 *   struct srv_engine_info (device name for STATUS=, chat_template from
 *   tokenizer.chat_template or NULL).
 * - tokenize/detokenize/detok_*: the llama/ tokenizer; thread-safe reads
 *   only. detok_push returns the bytes of the step's pieces (dec_text's
 *   piece), the daemon holds back split UTF-8 itself.
 * - generate: dec_generate with dec_params from srv_gen_params
 *   (la_n/w/g 0 = dec_lookahead_default_for_cost; dec wants n >= 3 while
 *   conf allows 2: raise it), n_stop = 0 (the daemon matches stop strings),
 *   an emit that calls the daemon's emit and then cancel(ud), returning
 *   nonzero to end dec_generate; map DEC_FINISH_CANCELLED back to STOP when
 *   the daemon's emit returned > 0, else CANCELLED; fill srv_gen_stats from
 *   dec_stats (steps, tokens, verify/accepted counts, ms to ns).
 *   Return -E2BIG if the prompt does not fit. */
#include <errno.h>

#include "daemon/engine.h"

int srv_engine_llama_new(const struct conf *cf, struct srv_engine *ret)
{
    return -EOPNOTSUPP;
}
