/* lade-info: prints what lade reads from every Vulkan device and which one
 * it would run on, and why. Makes its own instance, so that it works when
 * the rest of lade cannot start. With --model MODEL.gguf it prints what
 * lade reads of a model instead (no Vulkan): its configuration, tokenizer,
 * special ids, RoPE, tensor formats and chat format, the last decided by
 * laded's own code (daemon/chat.c); --vocab prints the tokenizer alone.
 * Exit status: 0 fine, 1 no Vulkan device or driver, or a model or
 * vocabulary lade refuses, 2 the choice failed (--device matches nothing
 * usable), 3 the validation layer reported something, 64 bad usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/chat.h"
#include "llama/config.h"
#include "llama/gguf.h"
#include "llama/tokenizer.h"
#include "vk/vkr.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

struct opts {
    const char *device;
    const char *vocab;
    const char *model;
    bool validation;
};

static unsigned validation_messages;

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *m,
                                                 void *user)
{
    if (sev < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)
        return VK_FALSE;
    validation_messages++;
    fprintf(stderr, "lade-info: validation %s: %s\n",
            sev >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
            m->pMessage);
    return VK_FALSE;
}

static bool has_instance_ext(const char *name)
{
    VkExtensionProperties *v;
    uint32_t n = 0;
    bool found = false;

    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS)
        return false;
    v = calloc(n ? n : 1, sizeof(*v));
    if (v && vkEnumerateInstanceExtensionProperties(NULL, &n, v) >= VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(v[i].extensionName, name) == 0;
    free(v);
    return found;
}

static bool has_layer(const char *name)
{
    VkLayerProperties *v;
    uint32_t n = 0;
    bool found = false;

    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS)
        return false;
    v = calloc(n ? n : 1, sizeof(*v));
    if (v && vkEnumerateInstanceLayerProperties(&n, v) >= VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(v[i].layerName, name) == 0;
    free(v);
    return found;
}

/* apiVersion 1.3: vkr_device_info_query chains 1.2/1.3 structs by each
 * device's version, which the instance must allow. */
static VkResult instance_create(const struct opts *o, VkInstance *ret)
{
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "lade-info",
        .apiVersion = VK_API_VERSION_1_3,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
    };
    const char *exts[2], *layers[1] = { VALIDATION_LAYER };
    VkDebugUtilsMessengerCreateInfoEXT mi = vkr_messenger_info(on_message);

    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[ci.enabledExtensionCount++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        ci.flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    if (o->validation) {
        exts[ci.enabledExtensionCount++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.pNext = &mi; /* messages from vkCreateInstance/vkDestroyInstance */
    }
    ci.ppEnabledExtensionNames = exts;
    return vkCreateInstance(&ci, NULL, ret);
}

static VkDebugUtilsMessengerEXT messenger_create(VkInstance inst)
{
    PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                    inst, "vkCreateDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerEXT m = VK_NULL_HANDLE;

    VkDebugUtilsMessengerCreateInfoEXT mi = vkr_messenger_info(on_message);
    if (!create || create(inst, &mi, NULL, &m) != VK_SUCCESS) {
        fprintf(stderr, "lade-info: --validation: cannot install a debug messenger\n");
        validation_messages++;
    }
    return m;
}

static void messenger_destroy(VkInstance inst, VkDebugUtilsMessengerEXT m)
{
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                    inst, "vkDestroyDebugUtilsMessengerEXT");

    if (m != VK_NULL_HANDLE && destroy)
        destroy(inst, m, NULL);
}

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: lade-info [--device INDEX|NAME] [--validation]\n"
                 "       lade-info --model MODEL.gguf\n"
                 "       lade-info --vocab MODEL.gguf\n"
                 "Print every Vulkan device as lade sees it, then the one lade would use.\n"
                 "  --device X    test a choice: an index, or part of a device name\n"
                 "  --validation  run under " VALIDATION_LAYER "\n"
                 "  --model FILE  print what lade reads of a GGUF instead: architecture, shape,\n"
                 "                tokenizer, special ids, RoPE, tensor formats, chat format\n"
                 "  --vocab FILE  print the tokenizer of a GGUF instead: kind, pre-tokenizer,\n"
                 "                special and end-of-generation ids\n");
    return status;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--validation") == 0)
            o->validation = true;
        else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            o->device = argv[++i];
        else if (strncmp(argv[i], "--device=", 9) == 0)
            o->device = argv[i] + 9;
        else if (strcmp(argv[i], "--vocab") == 0 && i + 1 < argc)
            o->vocab = argv[++i];
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            o->model = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout, 1); /* 1: done, exit 0 */
        else
            return usage(stderr, 64);
    }
    return 0;
}

/* Reads every device into *ret_list; a device that cannot be read is
 * reported and left out. Returns how many were read, or a negative errno. */
static int read_devices(VkInstance inst, struct vkr_device_info **ret_list)
{
    VkPhysicalDevice *pds;
    struct vkr_device_info *list;
    uint32_t n = 0, k = 0;
    VkResult vr;

    vr = vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (vr != VK_SUCCESS || n == 0)
        return vr != VK_SUCCESS ? -EIO : 0;
    pds = calloc(n, sizeof(*pds));
    list = calloc(n, sizeof(*list));
    if (!pds || !list || vkEnumeratePhysicalDevices(inst, &n, pds) < VK_SUCCESS) {
        free(pds);
        free(list);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        int r = vkr_device_info_query(inst, pds[i], i, &list[k]);

        if (r < 0) {
            fprintf(stderr, "lade-info: device %u cannot be read: %s\n", i, strerror(-r));
            continue;
        }
        if (k)
            fputc('\n', stdout);
        vkr_device_info_print(&list[k++], stdout);
    }
    free(pds);
    *ret_list = list;
    return (int)k;
}

static int report_choice(const struct vkr_device_info *list, uint32_t n, const char *want)
{
    char reason[512];
    int r = vkr_select_device(list, n, want, reason, sizeof(reason));

    if (r < 0) {
        fprintf(stderr, "\nlade-info: no device for lade: %s\n", reason);
        return 2;
    }
    printf("\nlade would use device %u: %s\n", list[r].index, reason);
    return 0;
}

static int report_vocab(const char *path)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = NULL;
    struct llm_tok *tok = NULL;
    const int32_t *eog;
    int r = llm_gguf_open(path, &g, err, sizeof(err));
    if (r == 0)
        r = llm_tok_load_gguf(g, &tok, err, sizeof(err));
    llm_gguf_free(g);
    if (r < 0) {
        fprintf(stderr, "lade-info: %s\n", err);
        return 1;
    }
    printf("tokenizer %s (%s), pre-tokenizer %s, %d tokens, add_bos %s\n", llm_tok_model(tok),
           llm_tok_pre(tok) ? "byte-level BPE" : "SentencePiece",
           llm_tok_pre(tok) ? llm_tok_pre(tok) : "-", (int)llm_tok_n_vocab(tok),
           llm_tok_add_bos(tok) ? "yes" : "no");
    /* -1: the vocabulary has none. */
    printf("bos %d, eos %d, unk %d\n", (int)llm_tok_bos(tok), (int)llm_tok_eos(tok),
           (int)llm_tok_unk(tok));
    size_t n = llm_tok_eog(tok, &eog);
    printf("end of generation:");
    for (size_t i = 0; i < n; i++)
        printf(" %d", (int)eog[i]);
    printf("%s\n", n ? "" : " none");
    llm_tok_free(tok);
    return 0;
}

/* ---- --model: what lade reads of a GGUF ---------------------------------- */

static const char *yes(bool b)
{
    return b ? "yes" : "no";
}

static void print_config(const struct llm_config *c)
{
    static const char *const scaling[] = { "none", "linear", "yarn" };
    printf("architecture: %s\n", llm_arch_name(c->arch));
    printf("layers: %u\ndim: %u\nheads: %u\nkv heads: %u\nhead dim: %u\nffn: %u\n", c->n_layers,
           c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn);
    printf("n_ctx_train: %u\nrms eps: %g\n", c->n_ctx_train, c->rms_eps);
    printf("rope: %s, theta %g, %u dims a head\n",
           c->rope_neox ? "neox (pairs i, i + dims/2)" : "normal (adjacent pairs)", c->rope_theta,
           c->rope_dims);
    printf("rope scaling: %s", scaling[c->rope_scaling]);
    if (c->rope_scaling == LLM_ROPE_SCALING_LINEAR)
        printf(", factor %g%s", c->rope_factor, c->rope_factor == 1.0f ? " (none)" : "");
    else if (c->rope_scaling == LLM_ROPE_SCALING_YARN)
        printf(", factor %g, original context %u, ext_factor %g, beta_fast %g, beta_slow %g",
               c->rope_factor, c->rope_orig_ctx, c->yarn_ext_factor, c->yarn_beta_fast,
               c->yarn_beta_slow);
    printf(", attn_factor %g, cos/sin scale %g\n", c->rope_attn_factor, c->rope_mscale);
    printf("rope_freqs: %s\n", yes(c->rope_freqs));
    printf("tied embeddings: %s\nqkv bias: %s\nqk norm: %s\n", yes(c->tied_embeddings),
           yes(c->qkv_bias), yes(c->qk_norm));
}

/* Each ggml type the file's tensors use, with how many. */
static void print_formats(const struct llm_gguf *g)
{
    uint64_t count[64] = { 0 }, n = llm_gguf_n_tensors(g);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t t = llm_gguf_tensor_at(g, i)->type;
        count[t < 64 ? t : 63]++;
    }
    printf("tensors: %llu%s", (unsigned long long)n, n ? ":" : "");
    for (uint32_t t = 0; t < 64; t++)
        if (count[t])
            printf(" %s %llu", llm_ggml_type_name(t), (unsigned long long)count[t]);
    printf("\n");
}

static void print_tokenizer(const struct llm_tok *tok)
{
    const int32_t *eog;
    size_t n = llm_tok_eog(tok, &eog);
    printf("vocab: %d tokens, %s (%s)\n", (int)llm_tok_n_vocab(tok), llm_tok_model(tok),
           llm_tok_pre(tok) ? "byte-level BPE" : "SentencePiece");
    printf("pre-tokenizer: %s\nadd_bos: %s\n", llm_tok_pre(tok) ? llm_tok_pre(tok) : "-",
           yes(llm_tok_add_bos(tok)));
    /* -1: the vocabulary declares none */
    printf("special ids: bos %d, eos %d, eot %d, eom %d, pad %d, unk %d\n", (int)llm_tok_bos(tok),
           (int)llm_tok_eos(tok), (int)llm_tok_eot(tok), (int)llm_tok_eom(tok),
           (int)llm_tok_pad(tok), (int)llm_tok_unk(tok));
    printf("end of generation:");
    for (size_t i = 0; i < n; i++)
        printf(" %d", (int)eog[i]);
    printf("%s\n", n ? "" : " none");
}

/* One line of text with its control characters escaped. */
static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\\' || c == '"')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

/* The chat format laded would choose for this model (srv_chat_new: the
 * template if lade's Jinja interpreter renders it, else the fallback of its
 * family, else none), and a two-message conversation rendered with it. */
static int print_chat(const struct llm_gguf *g, const struct llm_tok *tok)
{
    static const struct ipc_message conv[] = {
        { .role = IPC_ROLE_SYSTEM, .content = "You are a helpful assistant." },
        { .role = IPC_ROLE_USER, .content = "Hello!" },
    };
    struct llm_gguf_str s = { 0 };
    struct srv_chat *chat = NULL;
    struct srv_chat_prompt p = { 0 };
    char bos[256] = "", eos[256] = "", *tmpl = NULL, err[256] = "";
    bool has = llm_gguf_get_str(g, "tokenizer.chat_template", &s, NULL, 0) == 0;
    if (has && !(tmpl = strndup(s.ptr, s.len)))
        return -ENOMEM;
    if (tok) {
        llm_gguf_token_text(g, llm_tok_bos(tok), bos, sizeof(bos));
        llm_gguf_token_text(g, llm_tok_eos(tok), eos, sizeof(eos));
    }
    int r = srv_chat_new(tmpl, bos, eos, &chat);
    free(tmpl);
    if (r < 0)
        return r;
    const char *fmt = srv_chat_format(chat), *why = srv_chat_fallback_reason(chat);
    printf("chat template: %s", has ? "present" : "none");
    if (has)
        printf(", %zu bytes, %s", (size_t)s.len,
               why ? "lade's Jinja interpreter cannot render it" : "rendered by lade's Jinja");
    printf("\n");
    if (why)
        printf("chat template error: %s\n", why);
    printf("chat format: %s\n", !fmt                      ? "none (chat requests are refused)" :
                                strcmp(fmt, "jinja") == 0 ? "jinja (the model's template)" :
                                                            fmt);
    if (fmt) {
        r = srv_chat_apply(chat, conv, 2, NULL, &p, err, sizeof(err));
        if (r == 0) {
            printf("chat sample: \"");
            print_escaped(p.text, p.len);
            printf("\"%s\n", p.add_bos ? " after BOS" : "");
        } else if (r != -ENOMEM) {
            printf("chat sample: fails: %s\n", err);
            r = 0;
        }
        srv_chat_prompt_done(&p);
    }
    srv_chat_free(chat);
    return r;
}

static int report_model(const char *path)
{
    char err[LLM_GGUF_ERR_MAX];
    struct llm_gguf *g = NULL;
    struct llm_tok *tok = NULL;
    struct llm_config c;
    struct llm_gguf_str name;
    int r = llm_gguf_open(path, &g, err, sizeof(err)), status = 0;
    if (r < 0) {
        fprintf(stderr, "lade-info: %s\n", err);
        return 1;
    }
    printf("file: %s\n", path);
    if (llm_gguf_get_str(g, "general.name", &name, NULL, 0) == 0)
        printf("name: %.*s\n", (int)name.len, name.ptr);
    /* what lade cannot run is said, and the rest still printed */
    if (llm_config_load(g, &c, err, sizeof(err)) == 0) {
        print_config(&c);
    } else {
        printf("model: lade cannot run it: %s\n", err);
        status = 1;
    }
    print_formats(g);
    if (llm_tok_load_gguf(g, &tok, err, sizeof(err)) == 0) {
        print_tokenizer(tok);
    } else {
        printf("vocab: lade cannot read it: %s\n", err);
        status = 1;
    }
    r = print_chat(g, tok);
    if (r < 0) {
        fprintf(stderr, "lade-info: %s\n", strerror(-r));
        status = 1;
    }
    llm_tok_free(tok);
    llm_gguf_free(g);
    return status;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    struct vkr_device_info *list = NULL;
    VkInstance inst = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
    VkResult vr;
    int n, status = parse_args(argc, argv, &o);

    if (status)
        return status == 1 ? 0 : status;
    if (o.vocab)
        return report_vocab(o.vocab);
    if (o.model)
        return report_model(o.model);
    if (o.validation && !has_layer(VALIDATION_LAYER)) {
        fprintf(stderr,
                "lade-info: --validation: layer '%s' is not installed "
                "(Debian: vulkan-validationlayers)\n",
                VALIDATION_LAYER);
        return 1;
    }
    vr = instance_create(&o, &inst);
    if (vr != VK_SUCCESS) {
        fprintf(stderr,
                "lade-info: no Vulkan driver: vkCreateInstance failed (VkResult %d); "
                "install the GPU's Vulkan driver, or mesa-vulkan-drivers for lavapipe\n",
                vr);
        return 1;
    }
    if (o.validation)
        messenger = messenger_create(inst);
    n = read_devices(inst, &list);
    if (n <= 0) {
        fprintf(stderr, "lade-info: no Vulkan device found%s%s\n", n < 0 ? ": " : "",
                n < 0 ? strerror(-n) : "");
        status = 1;
    } else {
        status = report_choice(list, (uint32_t)n, o.device);
    }
    free(list);
    messenger_destroy(inst, messenger);
    vkDestroyInstance(inst, NULL);
    if (validation_messages) {
        fprintf(stderr, "lade-info: %u validation messages\n", validation_messages);
        return status ? status : 3;
    }
    return status;
}
