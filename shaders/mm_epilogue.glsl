/* The fused epilogues of the matrix kernels (matmul.comp's header says
 * what EPI 1-6 and flags 4 and 16 do), shared by matmul.comp and
 * matmul_q8.comp: the including shader declares stage[], p, Y, H, H2, NW,
 * XN, POS, LOCAL, TILE_T, ROWS_WG and includes rope.glsl and mm_norm.glsl
 * (rs[]) first. */

/* Staged sum of virtual row j, token t: with the norm folded in (flag
 * 4), times the token's scale. */
float staged_sum(uint j, uint t)
{
    float v = stage[j * TILE_T + t];
    return (p.flags & 4u) != 0u ? v * rs[t] : v;
}

/* After the barrier: finish the staged sums (EPI 1-6). */
void epilogue(uint row0, uint t0, uint nt)
{
    uint lid = gl_LocalInvocationIndex;
    if (EPI == 6u) {
        for (uint i = lid; i < ROWS_WG * TILE_T; i += LOCAL) {
            uint r = i / TILE_T, t = i % TILE_T;
            if (t < nt && row0 + r < p.nrows) {
                uint c = p.y_off + row0 + r, o = (t0 + t) * p.y_stride + c;
                float v = staged_sum(r, t);
                float y = (p.flags & 1u) != 0u ? Y[o] + v : v;
                Y[o] = y;
                if ((p.flags & 16u) != 0u)
                    XN[o] = y * NW[c];
            }
        }
    } else if (EPI == 1u) {
        for (uint i = lid; i < ROWS_WG * TILE_T; i += LOCAL) {
            uint r = i / TILE_T, t = i % TILE_T;
            if (t < nt && row0 + r < p.nrows) {
                float g = staged_sum(r, t), u = staged_sum(ROWS_WG + r, t);
                Y[(t0 + t) * p.y_stride + p.y_off + row0 + r] = g / (1.0 + exp(-g)) * u;
            }
        }
    } else {
        for (uint i = lid; i < (ROWS_WG / 2u) * TILE_T; i += LOCAL) {
            uint r = 2u * (i / TILE_T), t = i % TILE_T;
            if (t < nt && row0 + r < p.nrows) {
                vec2 v = vec2(staged_sum(r, t), staged_sum(r + 1u, t));
                uint e = p.y_off + row0 + r; /* element of the Q, K or V row */
                /* EPI 5: which of Q, K, V the row is, and its element there */
                uint kind = EPI != 5u ? EPI : e < p.y_stride ? 2u : e < p.y_stride + p.kvdim ? 3u : 4u;
                if (EPI == 5u && kind != 2u)
                    e -= kind == 3u ? p.y_stride : p.y_stride + p.kvdim;
                uint stride = EPI == 5u && kind != 2u ? p.kvdim : p.y_stride;
                if (kind != 4u)
                    v = rope_rot(v, e % p.head_dim, float(POS[t0 + t]), p.rope_dims, p.mscale);
                if (kind == 2u) {
                    uint o = (t0 + t) * stride + e;
                    Y[o] = v.x;
                    Y[o + 1u] = v.y;
                } else if (EPI == 5u && kind == 4u) {
                    H2[((p.slot0 + t0 + t) * stride + e) >> 1] = packHalf2x16(v);
                } else {
                    H[((p.slot0 + t0 + t) * stride + e) >> 1] = packHalf2x16(v);
                }
            }
        }
    }
}
