/* laded.conf, laded.conf(5) and the markdown key tables, from the schema. */
#include "conf/gen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf-internal.h"

static bool new_section(const struct conf_key *schema, size_t i)
{
    return i == 0 || strcmp(schema[i].section, schema[i - 1].section) != 0;
}

static int finish(FILE *f)
{
    return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

static const char *const conf_head =
        "# /etc/lade/laded.conf: configuration of laded(8), described in laded.conf(5).\n"
        "#\n"
        "# Every key is listed, commented out at its default. To change one, remove\n"
        "# the '#' and edit the value. Flags override this file: --socket, --model,\n"
        "# --device and --set SECTION.KEY=VALUE. Keys marked SIGHUP take effect on\n"
        "# 'systemctl reload laded'; the others need a restart. After editing, run\n"
        "# 'laded --check-config'. A line holds at most 199 bytes; ';' after a blank\n"
        "# starts a comment. Sizes take K, M, G (powers of 1024); booleans are yes/no.\n"
        "#\n"
        "# Generated from conf/schema.c: edit the schema, then build target conf-regen.\n";

int conf_gen_conf(FILE *f)
{
    size_t n;
    const struct conf_key *schema = conf_schema(&n);
    char range[128];

    fputs(conf_head, f);
    for (size_t i = 0; i < n; i++) {
        const struct conf_key *k = &schema[i];
        if (new_section(schema, i))
            fprintf(f, "\n[%s]\n", k->section);
        else
            fputc('\n', f);
        conf_format_range(k, range, sizeof(range));
        fprintf(f, "# %s.\n# Allowed: %s%s. %s.\n", k->doc, range,
                k->flags & CONF_F_EMPTY ? ", or empty" : "",
                k->flags & CONF_F_RELOAD ? "Changes on SIGHUP" : "Needs a restart");
        fprintf(f, "#%s = %s\n", k->key, k->def);
    }
    return finish(f);
}

/* roff-safe copy of one line of text. */
static void roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

static const char *const man_head =
        ".\\\" Generated from conf/schema.c by lade_conf_gen (target conf-regen): do not edit.\n"
        ".TH LADED.CONF 5 \"\" \"lade\" \"File Formats Manual\"\n"
        ".SH NAME\nladed.conf \\- configuration file of laded\n"
        ".SH SYNOPSIS\n.I /etc/lade/laded.conf\n"
        ".SH DESCRIPTION\n"
        ".BR laded (8)\nreads this INI file at start and on\n.BR SIGHUP .\n"
        "Lines are\n.BI [ section ]\nheaders,\n.IB key \" = \" value\n"
        "assignments, or comments starting with\n.B #\nor\n.BR ; .\n"
        "A\n.B ;\nafter a blank also starts a comment. Blanks around keys and values are ignored;\n"
        "a line holds at most 199 bytes. Keys and section names are lower case.\n"
        "Values must be valid UTF\\-8 without control characters.\n"
        ".PP\nEvery key is validated (type, range, allowed values); an invalid value stops\n"
        "the daemon with a message naming file, line and key.\n"
        "Unknown sections and keys are reported as warnings and ignored.\n"
        "A key given twice takes its last value, with a warning.\n"
        ".PP\nPrecedence: built\\-in defaults, then this file, then command\\-line flags of\n"
        ".BR laded (8)\n(\\fB\\-\\-set\\fR \\fISECTION\\fB.\\fIKEY\\fB=\\fIVALUE\\fR and its shorthands).\n"
        "\\fBladed \\-\\-check\\-config\\fR validates the result and exits.\n"
        ".PP\nTypes: \\fIboolean\\fR is yes, no, true, false, on, off, 1 or 0;\n"
        "\\fIsize\\fR is a number of bytes, optionally followed by K, M or G\n"
        "(also KiB, MiB, GiB; powers of 1024); \\fIoctal mode\\fR is like 0660;\n"
        "\\fIpath\\fR is absolute. Keys marked \\fBSIGHUP\\fR change on reload; a changed\n"
        "key marked \\fBrestart\\fR is logged and ignored until laded restarts.\n";

static void man_key(FILE *f, const struct conf_key *k)
{
    char range[128];

    conf_format_range(k, range, sizeof(range));
    fprintf(f, ".TP\n.BI \"%s = \" \"%s\"\n", k->key, conf_type_name(k->type));
    roff(f, k->doc);
    fputs(".\n.br\nDefault: ", f);
    if (k->def[0])
        roff(f, k->def);
    else
        fputs("empty", f);
    fputs("; allowed: ", f);
    roff(f, range);
    fprintf(f, "%s; %s.\n", k->flags & CONF_F_EMPTY ? ", or empty" : "",
            k->flags & CONF_F_RELOAD ? "\\fBSIGHUP\\fR" : "\\fBrestart\\fR");
}

int conf_gen_man(FILE *f)
{
    size_t n, nr;
    const struct conf_key *schema = conf_schema(&n);
    const struct conf_rule *rules = conf_rules(&nr);

    fputs(man_head, f);
    for (size_t i = 0; i < n; i++) {
        if (new_section(schema, i))
            fprintf(f, ".SH \"[%s]\"\n", schema[i].section);
        man_key(f, &schema[i]);
    }
    fputs(".SH \"CROSS\\-KEY RULES\"\nChecked after the flags are applied; 0 (automatic) always passes.\n",
          f);
    for (size_t i = 0; i < nr; i++)
        fprintf(f, ".IP \\(bu 2\n[%s] %s \\(<= [%s] %s\n", rules[i].section_a, rules[i].key_a,
                rules[i].section_b, rules[i].key_b);
    fputs(".SH FILES\n.TP\n.I /etc/lade/laded.conf\nThe configuration file.\n"
          ".SH \"SEE ALSO\"\n.BR laded (8),\n.BR lade (1)\n",
          f);
    return finish(f);
}

static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

int conf_gen_markdown(FILE *f)
{
    size_t n, nr;
    const struct conf_key *schema = conf_schema(&n);
    const struct conf_rule *rules = conf_rules(&nr);
    char range[128];

    for (size_t i = 0; i < n; i++) {
        const struct conf_key *k = &schema[i];
        if (new_section(schema, i))
            fprintf(f,
                    "%s### `[%s]`\n\n| Key | Type | Default | Allowed | SIGHUP | Meaning |\n"
                    "|---|---|---|---|---|---|\n",
                    i ? "\n" : "", k->section);
        conf_format_range(k, range, sizeof(range));
        fprintf(f, "| `%s` | %s | %s%s%s | ", k->key, conf_type_name(k->type), k->def[0] ? "`" : "",
                k->def[0] ? k->def : "(empty)", k->def[0] ? "`" : "");
        md_cell(f, range);
        fprintf(f, "%s | %s | ", k->flags & CONF_F_EMPTY ? ", or empty" : "",
                k->flags & CONF_F_RELOAD ? "yes" : "no");
        md_cell(f, k->doc);
        fputs(" |\n", f);
    }
    fputs("\nCross-key rules, checked after the flags are applied (0, automatic, always passes):\n\n",
          f);
    for (size_t i = 0; i < nr; i++)
        fprintf(f, "- `[%s] %s` ≤ `[%s] %s`\n", rules[i].section_a, rules[i].key_a,
                rules[i].section_b, rules[i].key_b);
    return finish(f);
}

int conf_gen_markdown_splice(const char *text, FILE *f)
{
    const char *b = strstr(text, CONF_GEN_BEGIN);
    const char *e = b ? strstr(b, CONF_GEN_END) : NULL;

    if (!b || !e)
        return -EINVAL;
    b += strlen(CONF_GEN_BEGIN);
    fwrite(text, 1, (size_t)(b - text), f);
    fputs("\n\n", f);
    conf_gen_markdown(f);
    fputc('\n', f);
    fputs(e, f);
    return finish(f);
}
