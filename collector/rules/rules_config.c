/*
 * rules_config.c - load the rules a collector config names.
 *
 * Kept apart from the manager so the manager does not depend on the
 * collector's config struct (unit tests build managers from plain paths),
 * and so main.c's start-up and reload paths are one call each. Relative
 * rule_files globs are taken from the config file's directory, as
 * Prometheus does.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "collector/config.h"
#include "rules/manager.h"
#include "rules/rulefile.h"
#include "vigil/alloc.h"

vg_err_t vg_rules_load_config(vg_rules_t *m, const vg_collector_config_t *cfg, vg_error *err)
{
    char dir[4096];
    const char *base = NULL;
    if (cfg->source && strchr(cfg->source, '/')) {
        snprintf(dir, sizeof dir, "%s", cfg->source);
        base = dirname(dir);
    }
    char **files = NULL;
    size_t n = 0;
    vg_err_t rc = vg_rulefile_glob(cfg->rule_files, cfg->nrule_files, base, &files, &n, err);
    if (rc) return rc;
    vg_rules_settings s = {
        .default_interval_ms = cfg->evaluation_interval_ms,
        .external_labels = cfg->external_labels,
        .nexternal_labels = cfg->nexternal_labels,
        .external_url = cfg->external_url,
    };
    rc = vg_rules_load(m, (const char *const *)files, n, &s, err);
    vg_free(files);
    return rc;
}
