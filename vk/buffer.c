/* Buffers: one allocation each, persistent mappings for host-visible ones,
 * uploads and downloads through a bounded staging buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vkr.h"

#define STAGING_BYTES (16u << 20)
/* The batch ring: enough staging for the copy engine to stay busy while
 * the host memcpys (or repacks) the next piece. */
#define RING_SLOTS 3
#define RING_BYTES (32u << 20)

struct vkr_upload_ring {
    struct vkr_buf st[RING_SLOTS];
    struct vkr_cmd cmd[RING_SLOTS];
    bool busy[RING_SLOTS];
    uint32_t next;
    /* Host scratch for weight layout conversions, kept for the batch: a
     * fresh allocation per chunk costs a page fault per 4 KiB. */
    void *scratch;
    size_t scratch_bytes;
};

int vkr_buf_new(struct vkr_ctx *ctx, VkDeviceSize size, enum vkr_mem kind, struct vkr_buf *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (size == 0)
        size = 4; /* zero-sized buffers are invalid; keep callers simple */
    if (size > ctx->info.max_memory_allocation_size && ctx->info.max_memory_allocation_size) {
        snprintf(ctx->err, sizeof(ctx->err),
                 "buffer of %llu bytes exceeds the device's allocation limit %llu",
                 (unsigned long long)size,
                 (unsigned long long)ctx->info.max_memory_allocation_size);
        return -E2BIG;
    }
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(ctx->dev, &bi, NULL, &ret->buf);
    if (r != VK_SUCCESS) {
        ret->buf = VK_NULL_HANDLE;
        return vkr_fail(ctx, r, "vkCreateBuffer");
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->dev, ret->buf, &req);
    uint32_t type = kind == VKR_MEM_DEVICE ? ctx->mem_device :
                    kind == VKR_MEM_UPLOAD ? ctx->mem_upload :
                                             ctx->mem_readback;
    if (!(req.memoryTypeBits & (1u << type))) {
        vkr_buf_free(ctx, ret);
        snprintf(ctx->err, sizeof(ctx->err), "buffer cannot live in memory type %u", type);
        return -ENOTSUP;
    }
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    r = vkAllocateMemory(ctx->dev, &ai, NULL, &ret->mem);
    if (r == VK_SUCCESS)
        r = vkBindBufferMemory(ctx->dev, ret->buf, ret->mem, 0);
    if (r == VK_SUCCESS && kind != VKR_MEM_DEVICE)
        r = vkMapMemory(ctx->dev, ret->mem, 0, VK_WHOLE_SIZE, 0, &ret->map);
    if (r != VK_SUCCESS) {
        int err = vkr_fail(ctx, r, "allocating buffer memory");
        vkr_buf_free(ctx, ret);
        return err;
    }
    ret->size = size;
    ret->kind = kind;
    return 0;
}

static int ring_drain(struct vkr_ctx *ctx, struct vkr_upload_ring *u);

void vkr_buf_free(struct vkr_ctx *ctx, struct vkr_buf *b)
{
    if (!b)
        return;
    if (ctx->up && b->kind == VKR_MEM_DEVICE && b->buf)
        ring_drain(ctx, ctx->up); /* it may be a copy's destination (a failed or redone load) */
    if (b->buf)
        vkDestroyBuffer(ctx->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(ctx->dev, b->mem, NULL); /* implicitly unmaps */
    memset(b, 0, sizeof(*b));
}

int vkr_buf_invalidate(struct vkr_ctx *ctx, struct vkr_buf *b)
{
    if (b->kind != VKR_MEM_READBACK || ctx->readback_coherent)
        return 0;
    VkMappedMemoryRange range = {
        .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
        .memory = b->mem,
        .size = VK_WHOLE_SIZE,
    };
    VkResult r = vkInvalidateMappedMemoryRanges(ctx->dev, 1, &range);
    return r == VK_SUCCESS ? 0 : vkr_fail(ctx, r, "vkInvalidateMappedMemoryRanges");
}

int vkr_buf_invalidate_range(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize off,
                             VkDeviceSize size)
{
    if (b->kind != VKR_MEM_READBACK || ctx->readback_coherent || size == 0)
        return 0;
    /* Ranges of non-coherent memory start and end on the device's atom */
    VkDeviceSize atom = ctx->info.non_coherent_atom ? ctx->info.non_coherent_atom : 1;
    VkDeviceSize lo = off / atom * atom, hi = (off + size + atom - 1) / atom * atom;
    VkMappedMemoryRange range = {
        .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
        .memory = b->mem,
        .offset = lo,
        .size = hi >= b->size ? VK_WHOLE_SIZE : hi - lo, /* the rest of its own allocation */
    };
    VkResult r = vkInvalidateMappedMemoryRanges(ctx->dev, 1, &range);
    return r == VK_SUCCESS ? 0 : vkr_fail(ctx, r, "vkInvalidateMappedMemoryRanges");
}

static int check_range(struct vkr_ctx *ctx, const struct vkr_buf *b, VkDeviceSize off,
                       VkDeviceSize size)
{
    if (off > b->size || size > b->size - off) {
        snprintf(ctx->err, sizeof(ctx->err),
                 "copy of %llu bytes at %llu past the end of a %llu-byte buffer",
                 (unsigned long long)size, (unsigned long long)off, (unsigned long long)b->size);
        return -ERANGE;
    }
    return 0;
}

static int ring_wait(struct vkr_ctx *ctx, struct vkr_upload_ring *u, uint32_t i)
{
    if (!u->busy[i])
        return 0;
    u->busy[i] = false;
    return vkr_cmd_wait(ctx, &u->cmd[i]);
}

static void ring_free(struct vkr_ctx *ctx, struct vkr_upload_ring *u)
{
    for (uint32_t i = 0; i < RING_SLOTS; i++) {
        vkr_cmd_free(ctx, &u->cmd[i]);
        vkr_buf_free(ctx, &u->st[i]);
    }
    free(u->scratch);
    free(u);
}

int vkr_upload_begin(struct vkr_ctx *ctx)
{
    if (ctx->up)
        return 0;
    struct vkr_upload_ring *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    int err = 0;
    for (uint32_t i = 0; !err && i < RING_SLOTS; i++) {
        err = vkr_buf_new(ctx, RING_BYTES, VKR_MEM_UPLOAD, &u->st[i]);
        err = err ? err : vkr_cmd_new(ctx, 0, &u->cmd[i]);
    }
    if (err) {
        ring_free(ctx, u);
        return err;
    }
    ctx->up = u;
    return 0;
}

/* Waits for every copy in flight; the first error wins. */
static int ring_drain(struct vkr_ctx *ctx, struct vkr_upload_ring *u)
{
    int err = 0;
    for (uint32_t i = 0; i < RING_SLOTS; i++) {
        int e = ring_wait(ctx, u, i);
        err = err ? err : e;
    }
    return err;
}

int vkr_upload_end(struct vkr_ctx *ctx)
{
    struct vkr_upload_ring *u = ctx->up;
    if (!u)
        return 0;
    int err = ring_drain(ctx, u);
    ctx->up = NULL;
    ring_free(ctx, u);
    return err;
}

/* An upload in a batch: each piece into the next ring slot (after that
 * slot's previous copy finished), its copy submitted without waiting. */
static int ring_upload(struct vkr_ctx *ctx, struct vkr_upload_ring *u, struct vkr_buf *b,
                       VkDeviceSize off, const void *host, VkDeviceSize size)
{
    for (VkDeviceSize done = 0; done < size;) {
        uint32_t i = u->next;
        int err = ring_wait(ctx, u, i);
        if (err)
            return err;
        VkDeviceSize n = size - done < RING_BYTES ? size - done : RING_BYTES;
        memcpy(u->st[i].map, (const char *)host + done, n);
        VkBufferCopy region = { .srcOffset = 0, .dstOffset = off + done, .size = n };
        err = vkr_cmd_begin(ctx, &u->cmd[i]);
        if (err)
            return err;
        vkr_cmd_copy(&u->cmd[i], &u->st[i], b, &region, 1);
        err = vkr_cmd_submit(ctx, &u->cmd[i]);
        if (err)
            return err;
        u->busy[i] = true;
        u->next = (i + 1) % RING_SLOTS;
        done += n;
    }
    return 0;
}

/* Device-local buffers move through a staging buffer in STAGING_BYTES
 * pieces, each a one-off command buffer: this is load-time work only. */
static int staged_copy(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize off, void *host,
                       VkDeviceSize size, bool upload)
{
    struct vkr_buf st;
    VkDeviceSize piece = size < STAGING_BYTES ? size : STAGING_BYTES;
    int err = vkr_buf_new(ctx, piece, upload ? VKR_MEM_UPLOAD : VKR_MEM_READBACK, &st);
    if (err)
        return err;
    struct vkr_cmd c;
    err = vkr_cmd_new(ctx, 0, &c);
    for (VkDeviceSize done = 0; !err && done < size; done += piece) {
        VkDeviceSize n = size - done < piece ? size - done : piece;
        if (upload)
            memcpy(st.map, (const char *)host + done, n);
        VkBufferCopy region = {
            .srcOffset = upload ? 0 : off + done,
            .dstOffset = upload ? off + done : 0,
            .size = n,
        };
        err = vkr_cmd_begin(ctx, &c);
        if (err)
            break;
        vkr_cmd_copy(&c, upload ? &st : b, upload ? b : &st, &region, 1);
        err = vkr_cmd_submit_wait(ctx, &c);
        if (!err && !upload) {
            err = vkr_buf_invalidate(ctx, &st);
            memcpy((char *)host + done, st.map, n);
        }
    }
    vkr_cmd_free(ctx, &c);
    vkr_buf_free(ctx, &st);
    return err;
}

int vkr_buf_upload(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize offset, const void *src,
                   VkDeviceSize size)
{
    int err = check_range(ctx, b, offset, size);
    if (err || size == 0)
        return err;
    if (b->map) {
        memcpy((char *)b->map + offset, src, size);
        return 0;
    }
    if (ctx->up)
        return ring_upload(ctx, ctx->up, b, offset, src, size);
    return staged_copy(ctx, b, offset, (void *)src, size, true);
}

int vkr_buf_download(struct vkr_ctx *ctx, struct vkr_buf *b, VkDeviceSize offset, void *dst,
                     VkDeviceSize size)
{
    int err = check_range(ctx, b, offset, size);
    if (err || size == 0)
        return err;
    if (b->map) {
        err = vkr_buf_invalidate(ctx, b);
        if (!err)
            memcpy(dst, (const char *)b->map + offset, size);
        return err;
    }
    if (ctx->up && (err = ring_drain(ctx, ctx->up)) != 0)
        return err;
    return staged_copy(ctx, b, offset, dst, size, false);
}

int vkr_split_rows(uint64_t n_rows, uint64_t row_bytes, uint64_t max_range, uint64_t max_alloc,
                   uint64_t *ret_rows_per_chunk, uint64_t *ret_n_chunks)
{
    uint64_t limit = max_range < max_alloc ? max_range : max_alloc;
    if (row_bytes == 0 || n_rows == 0 || row_bytes > limit)
        return row_bytes > limit ? -E2BIG : -EINVAL;
    uint64_t per = limit / row_bytes;
    if (per > n_rows)
        per = n_rows;
    *ret_rows_per_chunk = per;
    *ret_n_chunks = (n_rows + per - 1) / per;
    return 0;
}

uint64_t vkr_max_binding(const struct vkr_ctx *ctx)
{
    uint64_t a = ctx->info.max_storage_buffer_range, b = ctx->info.max_memory_allocation_size;
    uint64_t m = a && b ? (a < b ? a : b) : (a ? a : b);
    if (ctx->max_binding_override && ctx->max_binding_override < m)
        m = ctx->max_binding_override;
    return m;
}

void vkr_set_max_binding_override(struct vkr_ctx *ctx, uint64_t bytes)
{
    ctx->max_binding_override = bytes;
}

int vkr_rows_upload(struct vkr_ctx *ctx, const void *data, uint64_t n_rows, uint64_t row_bytes,
                    struct vkr_rows *ret)
{
    return vkr_rows_upload_xform(ctx, data, n_rows, row_bytes, NULL, NULL, ret);
}

int vkr_rows_alloc(struct vkr_ctx *ctx, uint64_t n_rows, uint64_t row_bytes, struct vkr_rows *ret)
{
    memset(ret, 0, sizeof(*ret));
    uint64_t per, n;
    uint64_t lim = vkr_max_binding(ctx);
    int err = vkr_split_rows(n_rows, row_bytes, lim, lim, &per, &n);
    if (err || n > VKR_MAX_CHUNKS) {
        snprintf(ctx->err, sizeof(ctx->err),
                 "matrix of %llu rows x %llu bytes does not fit in %d bindings of %llu bytes",
                 (unsigned long long)n_rows, (unsigned long long)row_bytes, VKR_MAX_CHUNKS,
                 (unsigned long long)lim);
        return err ? err : -E2BIG;
    }
    ret->n_rows = n_rows;
    ret->row_bytes = row_bytes;
    ret->rows_per_chunk = per;
    for (uint32_t c = 0; c < n; c++) {
        uint64_t bytes = vkr_rows_count(ret, c) * row_bytes;
        /* Round up to whole 16-byte words: weight kernels read uvec4s. */
        err = vkr_buf_new(ctx, (bytes + 15) & ~(uint64_t)15, VKR_MEM_DEVICE, &ret->chunk[c]);
        ret->n_chunks = c + 1;
        if (err) {
            vkr_rows_free(ctx, ret);
            return err;
        }
    }
    return 0;
}

int vkr_rows_write(struct vkr_ctx *ctx, struct vkr_rows *r, uint64_t first, const void *data,
                   uint64_t n_rows)
{
    if (first > r->n_rows || n_rows > r->n_rows - first) {
        snprintf(ctx->err, sizeof(ctx->err), "rows %llu..%llu past the %llu of the matrix",
                 (unsigned long long)first, (unsigned long long)(first + n_rows),
                 (unsigned long long)r->n_rows);
        return -ERANGE;
    }
    const char *src = data;
    for (uint64_t row = first; row < first + n_rows;) {
        uint32_t c = (uint32_t)(row / r->rows_per_chunk);
        uint64_t in_chunk = row - vkr_rows_first(r, c), k = vkr_rows_count(r, c) - in_chunk;
        if (k > first + n_rows - row)
            k = first + n_rows - row;
        int err = vkr_buf_upload(ctx, &r->chunk[c], in_chunk * r->row_bytes, src, k * r->row_bytes);
        if (err)
            return err;
        src += k * r->row_bytes;
        row += k;
    }
    return 0;
}

int vkr_rows_upload_parts(struct vkr_ctx *ctx, const void *data, uint64_t n_rows, uint64_t bytes,
                          struct vkr_rows *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (n_rows == 0 || bytes == 0 || bytes > vkr_max_binding(ctx)) {
        snprintf(ctx->err, sizeof(ctx->err), "matrix of %llu bytes does not fit one binding",
                 (unsigned long long)bytes);
        return -E2BIG;
    }
    /* whole 16-byte words, as vkr_rows_alloc */
    int err = vkr_buf_new(ctx, (bytes + 15) & ~(uint64_t)15, VKR_MEM_DEVICE, &ret->chunk[0]);
    if (err)
        return err;
    ret->n_rows = n_rows;
    ret->rows_per_chunk = n_rows;
    ret->n_chunks = 1;
    if ((err = vkr_buf_upload(ctx, &ret->chunk[0], 0, data, bytes)) != 0)
        vkr_rows_free(ctx, ret);
    return err;
}

int vkr_rows_upload_xform(struct vkr_ctx *ctx, const void *data, uint64_t n_rows,
                          uint64_t row_bytes, vkr_rows_xform xform, void *arg, struct vkr_rows *ret)
{
    int err = vkr_rows_alloc(ctx, n_rows, row_bytes, ret);
    if (!err && !xform && (err = vkr_rows_write(ctx, ret, 0, data, n_rows)) != 0)
        vkr_rows_free(ctx, ret);
    if (err || !xform)
        return err;
    struct vkr_upload_ring *u = ctx->up;
    for (uint32_t c = 0; c < ret->n_chunks; c++) {
        uint64_t bytes = vkr_rows_count(ret, c) * row_bytes;
        const char *src = (const char *)data + vkr_rows_first(ret, c) * row_bytes;
        void *tmp;
        if (u && u->scratch_bytes >= bytes) {
            tmp = u->scratch;
        } else if (u) {
            free(u->scratch);
            u->scratch_bytes = 0;
            if ((tmp = u->scratch = malloc(bytes ? bytes : 1)) != NULL)
                u->scratch_bytes = bytes;
        } else {
            tmp = malloc(bytes ? bytes : 1);
        }
        if (!tmp) {
            snprintf(ctx->err, sizeof(ctx->err), "out of memory for a %llu-byte weight chunk",
                     (unsigned long long)bytes);
            err = -ENOMEM;
        } else if ((err = xform(arg, src, vkr_rows_count(ret, c), row_bytes, tmp)) != 0) {
            snprintf(ctx->err, sizeof(ctx->err), "weight layout conversion failed (%d)", err);
        }
        if (!err)
            err = vkr_buf_upload(ctx, &ret->chunk[c], 0, tmp, bytes);
        if (!u)
            free(tmp);
        if (err) {
            vkr_rows_free(ctx, ret);
            return err;
        }
    }
    return 0;
}

void vkr_rows_free(struct vkr_ctx *ctx, struct vkr_rows *r)
{
    if (!r)
        return;
    for (uint32_t c = 0; c < r->n_chunks; c++)
        vkr_buf_free(ctx, &r->chunk[c]);
    memset(r, 0, sizeof(*r));
}

uint64_t vkr_rows_first(const struct vkr_rows *r, uint32_t c)
{
    return (uint64_t)c * r->rows_per_chunk;
}

uint64_t vkr_rows_count(const struct vkr_rows *r, uint32_t c)
{
    uint64_t first = vkr_rows_first(r, c);
    return first >= r->n_rows ?
                   0 :
                   (r->n_rows - first < r->rows_per_chunk ? r->n_rows - first : r->rows_per_chunk);
}
