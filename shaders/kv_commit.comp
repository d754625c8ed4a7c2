#version 450
/* The KV rows kept by the last commit move from this step's scratch slots
 * to their place in the sequence: cache row MV[j].y = row MV[j].x, for K
 * and V of one layer. The moves are data, written by the host before the
 * submit, and so is the dispatch's size (indirect, y = the number of
 * moves, 0 when there are none), so that a recorded step serves any
 * n_past (the step cache, docs/kernels.md). Sources are the scratch
 * slots (commits) or another sequence's committed prefix (a prefix copy,
 * gpu_seq_copy_prefix); no source is also a destination of the same
 * dispatch.
 *
 * Invocation (w, j): word w (two f16) of move j; kvdim is even (the loader
 * refuses odd head dims). */
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer KCb { uint KC[]; };
layout(std430, binding = 1) buffer VCb { uint VC[]; };
layout(std430, binding = 2) readonly buffer MVb {
    uvec4 dispatch; /* x, y = moves, z, unused: vkCmdDispatchIndirect's */
    uvec2 MV[];     /* (source row, destination row) */
};
layout(push_constant) uniform P { uint words; } p; /* kvdim / 2 */
void main()
{
    uint w = gl_GlobalInvocationID.x, j = gl_WorkGroupID.y;
    if (w >= p.words)
        return;
    uint s = MV[j].x * p.words + w, d = MV[j].y * p.words + w;
    KC[d] = KC[s];
    VC[d] = VC[s];
}
