/* The shipped laded.conf, laded.conf(5) and docs/configuration.md cannot
 * drift from the schema: each mentions every key, and each is exactly what
 * lade_conf_gen writes (fix: cmake --build BUILD --target conf-regen). */
#include "conf-test.h"
#include "conf/gen.h"

static char *slurp(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", LADE_SOURCE_DIR, rel);
    FILE *f = fopen(path, "re");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, got, m);
    fclose(f);
    fclose(m);
    return buf;
}

static char *generate(int (*gen)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_int_equal(gen(m), 0);
    fclose(m);
    return buf;
}

/* Text between the line "start" (exclusive) and the next line starting with
 * next_prefix (or the end). */
static char *part(const char *text, const char *start, const char *next_prefix)
{
    const char *b = strstr(text, start);
    if (!b)
        return NULL;
    b += strlen(start);
    const char *e = b;
    while ((e = strchr(e, '\n')) && strncmp(e + 1, next_prefix, strlen(next_prefix)) != 0)
        e++;
    return strndup(b, e ? (size_t)(e - b) : strlen(b));
}

/* Each key appears in the part of each file that belongs to its section. */
static void test_every_key_mentioned(void **state)
{
    char *conf = slurp("conf/laded.conf");
    char *md = slurp("docs/configuration.md");
    char *man = slurp("docs/man/laded.conf.5");
    size_t n;
    const struct conf_key *s = conf_schema(&n);

    for (size_t i = 0; i < n; i++) {
        char head[64], want[256];
        snprintf(head, sizeof(head), "\n[%s]\n", s[i].section);
        char *p = part(conf, head, "[");
        snprintf(want, sizeof(want), "\n#%s = %s\n", s[i].key, s[i].def);
        if (!p || !strstr(p, want))
            fail_msg("conf/laded.conf lacks '#%s = %s' under [%s]", s[i].key, s[i].def,
                     s[i].section);
        free(p);
        snprintf(head, sizeof(head), "### `[%s]`\n", s[i].section);
        p = part(md, head, "###");
        snprintf(want, sizeof(want), "\n| `%s` |", s[i].key);
        if (!p || !strstr(p, want))
            fail_msg("docs/configuration.md lacks key `%s` under [%s]", s[i].key, s[i].section);
        free(p);
        snprintf(head, sizeof(head), ".SH \"[%s]\"\n", s[i].section);
        p = part(man, head, ".SH");
        snprintf(want, sizeof(want), ".BI \"%s = \"", s[i].key);
        if (!p || !strstr(p, want))
            fail_msg("docs/man/laded.conf.5 lacks key %s under [%s]", s[i].key, s[i].section);
        free(p);
    }
    free(conf);
    free(md);
    free(man);
}

static void expect_same(const char *rel, const char *want)
{
    char *have = slurp(rel);
    if (strcmp(have, want) != 0)
        fail_msg("%s differs from what conf/schema.c generates: run "
                 "'cmake --build BUILD --target conf-regen' and commit the result",
                 rel);
    free(have);
}

static void test_generated_files_current(void **state)
{
    char *conf = generate(conf_gen_conf);
    char *man = generate(conf_gen_man);
    char *md = slurp("docs/configuration.md");
    char *spliced = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&spliced, &len);

    expect_same("conf/laded.conf", conf);
    expect_same("docs/man/laded.conf.5", man);
    assert_int_equal(conf_gen_markdown_splice(md, m), 0);
    fclose(m);
    expect_same("docs/configuration.md", spliced);
    assert_int_equal(conf_gen_markdown_splice("no markers", stdout), -EINVAL);
    free(conf);
    free(man);
    free(md);
    free(spliced);
}

/* The shipped file, as shipped and with every key uncommented, configures
 * exactly the defaults, without a warning. */
static void test_shipped_file_is_defaults(void **state)
{
    char *text = slurp("conf/laded.conf");
    char *un = strdup(text);
    size_t n, o = 0;
    const struct conf_key *s = conf_schema(&n);

    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line + 1) : strlen(line);
        bool key = line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && memchr(line, '=', l);
        memcpy(un + o, line + key, l - key);
        o += l - key;
        line += l;
    }
    un[o] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        struct conf c, d;
        struct warnings w;
        char err[256];
        assert_int_equal(load_text(&c, pass ? un : text, &w, err, sizeof(err), NULL), 0);
        assert_int_equal(w.count, 0);
        assert_int_equal(conf_defaults(&d), 0);
        for (size_t i = 0; i < n; i++)
            assert_true(pass == 0 || strstr(un, s[i].key));
        for (size_t i = 0; i < n; i++) {
            char a[256], b[256];
            conf_format_value(&c, &s[i], a, sizeof(a));
            conf_format_value(&d, &s[i], b, sizeof(b));
            assert_string_equal(a, b);
        }
        assert_int_equal(conf_check(&c, err, sizeof(err)), 0);
        conf_free(&c);
        conf_free(&d);
    }
    free(text);
    free(un);
}

/* The hand-written pages exist and name what the configuration relies on. */
static void test_man_pages(void **state)
{
    char *laded = slurp("docs/man/laded.8");
    char *lade = slurp("docs/man/lade.1");

    assert_non_null(strstr(laded, "\\-\\-check\\-config"));
    assert_non_null(strstr(laded, "\\-\\-set"));
    assert_non_null(strstr(laded, "laded.conf (5)"));
    assert_non_null(strstr(laded, "SIGHUP"));
    assert_non_null(strstr(lade, "laded (8)"));
    free(laded);
    free(lade);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_mentioned),
        cmocka_unit_test(test_generated_files_current),
        cmocka_unit_test(test_shipped_file_is_defaults),
        cmocka_unit_test(test_man_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
