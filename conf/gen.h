/* Generators of the files that document the schema (used by lade_conf_gen
 * and test_conf_docs; internal to conf/). Each returns 0 or a negative errno. */
#ifndef LADE_CONF_GEN_H
#define LADE_CONF_GEN_H

#include <stdio.h>

#define CONF_GEN_BEGIN "<!-- BEGIN KEYS: generated from conf/schema.c by conf-regen -->"
#define CONF_GEN_END "<!-- END KEYS -->"

/* The shipped laded.conf: every key commented out at its default. */
int conf_gen_conf(FILE *f);

/* laded.conf(5) in roff. */
int conf_gen_man(FILE *f);

/* The key tables and cross-key rules, in markdown. */
int conf_gen_markdown(FILE *f);

/* Writes text with what lies between CONF_GEN_BEGIN and CONF_GEN_END
 * replaced by conf_gen_markdown(). -EINVAL when a marker is missing. */
int conf_gen_markdown_splice(const char *text, FILE *f);

#endif /* LADE_CONF_GEN_H */
