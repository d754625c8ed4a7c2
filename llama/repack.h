/* The weight layout the GPU kernels read (shaders/weights.glsl), for the
 * formats where it differs from the GGUF file's.
 *
 * Q4_0, Q8_0 and Q6_K blocks are 18, 34 and 210 bytes, so their quants sit
 * at unaligned offsets and a lane's run of 8 weights took up to five
 * scattered 4-byte loads. On the GPU the blocks of each buffer (a chunk of
 * whole rows) are split into two arrays: every block's quants (16, 32 or
 * 192 bytes: ql then qh for Q6_K; aligned, so a run is one load), then
 * every block's scales (the f16 scale; for Q6_K the 16 scale bytes and
 * d). Same bytes, same size, same values; only the order changes. Every
 * other format is uploaded as stored. */
#ifndef LADE_LLAMA_REPACK_H
#define LADE_LLAMA_REPACK_H

#include <stdbool.h>
#include <stdint.h>

/* True when `type` (a ggml type number) is repacked for the GPU. */
bool llm_repacked(uint32_t type);

/* Repack n_rows rows of row_bytes bytes (one GPU buffer's worth) from the
 * file's layout at src into dst (same size, not overlapping). Does nothing
 * useful, and returns -EINVAL, for a type that is not repacked or a
 * row_bytes that is not whole blocks. */
int llm_repack_rows(uint32_t type, const void *src, uint64_t n_rows, uint64_t row_bytes, void *dst);

#endif
