// C view of sentencepiece::SentencePieceProcessor; see sp_shim.h.
#include "llama/sp_shim.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

struct llm_sp {
    sentencepiece::SentencePieceProcessor proc;
};

namespace
{

void set_err(char *reterr, size_t errlen, const char *what, const char *detail)
{
    if (reterr && errlen > 0)
        snprintf(reterr, errlen, "%s: %s", what, detail);
}

int status_errno(const sentencepiece::util::Status &st)
{
    using sentencepiece::util::StatusCode;
    switch (st.code()) {
    case StatusCode::kNotFound: return -ENOENT;
    case StatusCode::kPermissionDenied: return -EACCES;
    case StatusCode::kResourceExhausted: return -ENOMEM;
    case StatusCode::kOutOfRange: return -ERANGE;
    default: return -EINVAL;
    }
}

// Both loaders differ only in the call that fills the processor.
template <typename F>
int load_with(F fill, const char *what, struct llm_sp **ret, char *reterr, size_t errlen)
{
    *ret = nullptr;
    llm_sp *sp = new (std::nothrow) llm_sp;
    if (!sp) {
        set_err(reterr, errlen, what, "out of memory");
        return -ENOMEM;
    }
    try {
        sentencepiece::util::Status st = fill(sp->proc);
        if (!st.ok()) {
            set_err(reterr, errlen, what, st.error_message());
            int r = status_errno(st);
            delete sp;
            return r;
        }
    } catch (const std::bad_alloc &) {
        delete sp;
        set_err(reterr, errlen, what, "out of memory");
        return -ENOMEM;
    } catch (const std::exception &e) {
        delete sp;
        set_err(reterr, errlen, what, e.what());
        return -EINVAL;
    }
    *ret = sp;
    return 0;
}

} // namespace

extern "C" int llm_sp_load_file(const char *path, struct llm_sp **ret, char *reterr, size_t errlen)
{
    return load_with([path](sentencepiece::SentencePieceProcessor &p) { return p.Load(path); },
                     path, ret, reterr, errlen);
}

extern "C" int llm_sp_load_proto(const void *data, size_t len, struct llm_sp **ret, char *reterr,
                                 size_t errlen)
{
    std::string_view bytes(static_cast<const char *>(data), len);
    return load_with(
            [bytes](sentencepiece::SentencePieceProcessor &p) {
                return p.LoadFromSerializedProto(bytes);
            },
            "sentencepiece model", ret, reterr, errlen);
}

extern "C" void llm_sp_free(struct llm_sp *sp)
{
    delete sp;
}

extern "C" int32_t llm_sp_n_pieces(const struct llm_sp *sp)
{
    return sp->proc.GetPieceSize();
}

extern "C" const char *llm_sp_piece(const struct llm_sp *sp, int32_t id, size_t *ret_len)
{
    if (id < 0 || id >= sp->proc.GetPieceSize())
        return nullptr;
    const std::string &s = sp->proc.IdToPiece(id);
    *ret_len = s.size();
    return s.c_str();
}

extern "C" int llm_sp_kind(const struct llm_sp *sp, int32_t id)
{
    if (id < 0 || id >= sp->proc.GetPieceSize())
        return 0;
    if (sp->proc.IsUnknown(id))
        return LLM_SP_UNKNOWN;
    if (sp->proc.IsControl(id))
        return LLM_SP_CONTROL;
    if (sp->proc.IsUnused(id))
        return LLM_SP_UNUSED;
    if (sp->proc.IsByte(id))
        return LLM_SP_BYTE;
    return LLM_SP_NORMAL;
}

extern "C" int32_t llm_sp_unk_id(const struct llm_sp *sp)
{
    return sp->proc.unk_id();
}

extern "C" int32_t llm_sp_bos_id(const struct llm_sp *sp)
{
    return sp->proc.bos_id();
}

extern "C" int32_t llm_sp_eos_id(const struct llm_sp *sp)
{
    return sp->proc.eos_id();
}

extern "C" int32_t llm_sp_pad_id(const struct llm_sp *sp)
{
    return sp->proc.pad_id();
}

extern "C" int llm_sp_serialized(const struct llm_sp *sp, uint8_t **ret, size_t *ret_len,
                                 char *reterr, size_t errlen)
{
    *ret = nullptr;
    *ret_len = 0;
    try {
        std::string s = sp->proc.serialized_model_proto();
        uint8_t *buf = static_cast<uint8_t *>(malloc(s.size() + 1));
        if (!buf) {
            set_err(reterr, errlen, "sentencepiece model", "out of memory");
            return -ENOMEM;
        }
        memcpy(buf, s.data(), s.size());
        *ret = buf;
        *ret_len = s.size();
        return 0;
    } catch (const std::exception &e) {
        set_err(reterr, errlen, "sentencepiece model", e.what());
        return -ENOMEM;
    }
}

extern "C" int llm_sp_encode(const struct llm_sp *sp, const char *text, size_t len, int32_t *out,
                             size_t cap, size_t *ret_n, char *reterr, size_t errlen)
{
    *ret_n = 0;
    try {
        std::vector<int> ids;
        sentencepiece::util::Status st = sp->proc.Encode(std::string_view(text, len), &ids);
        if (!st.ok()) {
            set_err(reterr, errlen, "encode", st.error_message());
            return status_errno(st);
        }
        *ret_n = ids.size();
        if (ids.size() > cap)
            return -ENOSPC;
        for (size_t i = 0; i < ids.size(); i++)
            out[i] = ids[i];
        return 0;
    } catch (const std::bad_alloc &) {
        set_err(reterr, errlen, "encode", "out of memory");
        return -ENOMEM;
    } catch (const std::exception &e) {
        set_err(reterr, errlen, "encode", e.what());
        return -EINVAL;
    }
}

extern "C" int llm_sp_decode(const struct llm_sp *sp, const int32_t *ids, size_t n, char *out,
                             size_t cap, size_t *ret_n, char *reterr, size_t errlen)
{
    *ret_n = 0;
    try {
        std::vector<int> v(ids, ids + n);
        std::string text;
        sentencepiece::util::Status st = sp->proc.Decode(v, &text);
        if (!st.ok()) {
            set_err(reterr, errlen, "decode", st.error_message());
            return status_errno(st);
        }
        *ret_n = text.size();
        if (text.size() >= cap)
            return -ENOSPC;
        memcpy(out, text.data(), text.size());
        out[text.size()] = '\0';
        return 0;
    } catch (const std::bad_alloc &) {
        set_err(reterr, errlen, "decode", "out of memory");
        return -ENOMEM;
    } catch (const std::exception &e) {
        set_err(reterr, errlen, "decode", e.what());
        return -EINVAL;
    }
}
