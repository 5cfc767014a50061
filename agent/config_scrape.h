/*
 * config_scrape.h (agent, internal) - the scrape_config parts that are more
 * than a table row: relabel rules, file_sd_configs, the HTTP client
 * settings (basic_auth, authorization, tls_config) and the Prometheus
 * `global` keys an agent accepts for compatibility. Only agent/config.c
 * includes this; the fields land in vg_scrape_config_t (agent/config.h).
 */
#ifndef VIGIL_AGENT_CONFIG_SCRAPE_H
#define VIGIL_AGENT_CONFIG_SCRAPE_H

#include <stddef.h>

#include "config.h"
#include "vigil/config.h"
#include "vigil/relabel_schema.h"

extern const vg_cfg_field_t vg_agent_cfg_file_sd_schema[];
extern const vg_cfg_field_t vg_agent_cfg_basic_auth_schema[];
extern const vg_cfg_field_t vg_agent_cfg_authorization_schema[];
extern const vg_cfg_field_t vg_agent_cfg_tls_schema[];

/* Check callback of one file_sd_configs entry: at least one valid path, and
 * relative paths resolved against the config file's directory. */
vg_err_t vg_agent_cfg_check_file_sd(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj);
/* CUSTOM parser of a global key that has no meaning for an agent: any value
 * is accepted and a debug line says it is ignored. */
vg_err_t vg_agent_cfg_ignored(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj);

/* Give sc the global sample/label/body size limits where the job sets none. */
void vg_agent_cfg_inherit_limits(const vg_agent_config_t *c, const vg_cfg_node_t *node,
                                 vg_scrape_config_t *sc);
/* Cross-field checks of one job after its keys are decoded: HTTP client
 * settings, then compile relabel_configs and metric_relabel_configs (the
 * compiled lists are registered in the vg_agent_config_t at ctx->user). */
vg_err_t vg_agent_cfg_check_scrape(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node,
                                   vg_scrape_config_t *sc);

#define VG_SC_OFF(f) offsetof(vg_scrape_config_t, f)
#define VG_AC_OFF(f) offsetof(vg_agent_config_t, f)

/* Rows of the scrape_configs element schema. */
#define SCRAPE_EXTRA_FIELDS                                                                        \
    {.key = "relabel_configs",                                                                     \
     .type = VG_CFG_T_LIST,                                                                        \
     .offset = VG_SC_OFF(relabel_rules),                                                           \
     .count_offset = VG_SC_OFF(nrelabel_rules),                                                    \
     .sub = vg_relabel_cfg_schema,                                                                 \
     .elem_size = sizeof(vg_relabel_rule_t),                                                       \
     .doc = "target relabeling, applied before each target's URL is built"},                       \
        {.key = "metric_relabel_configs",                                                          \
         .type = VG_CFG_T_LIST,                                                                    \
         .offset = VG_SC_OFF(metric_relabel_rules),                                                \
         .count_offset = VG_SC_OFF(nmetric_relabel_rules),                                         \
         .sub = vg_relabel_cfg_schema,                                                             \
         .elem_size = sizeof(vg_relabel_rule_t),                                                   \
         .doc = "relabeling of every scraped sample, before sample_limit and label_limit"},        \
        {.key = "file_sd_configs",                                                                 \
         .type = VG_CFG_T_LIST,                                                                    \
         .offset = VG_SC_OFF(file_sd),                                                             \
         .count_offset = VG_SC_OFF(nfile_sd),                                                      \
         .sub = vg_agent_cfg_file_sd_schema,                                                       \
         .elem_size = sizeof(vg_file_sd_config_t),                                                 \
         .check = vg_agent_cfg_check_file_sd,                                                      \
         .doc = "target groups read from JSON or YAML files, re-read when they change"},           \
        {.key = "basic_auth",                                                                      \
         .type = VG_CFG_T_SECTION,                                                                 \
         .offset = VG_SC_OFF(auth),                                                                \
         .sub = vg_agent_cfg_basic_auth_schema,                                                    \
         .doc = "HTTP basic authentication of scrape requests"},                                   \
        {.key = "authorization",                                                                   \
         .type = VG_CFG_T_SECTION,                                                                 \
         .offset = VG_SC_OFF(auth),                                                                \
         .sub = vg_agent_cfg_authorization_schema,                                                 \
         .doc = "Authorization header of scrape requests"},                                        \
        {.key = "bearer_token",                                                                    \
         .type = VG_CFG_T_STRING,                                                                  \
         .offset = VG_SC_OFF(auth.bearer_token),                                                   \
         .doc = "deprecated Prometheus key: same as authorization.credentials"},                   \
        {.key = "bearer_token_file",                                                               \
         .type = VG_CFG_T_STRING,                                                                  \
         .offset = VG_SC_OFF(auth.bearer_token_file),                                              \
         .doc = "deprecated Prometheus key: same as authorization.credentials_file"},              \
    {                                                                                              \
        .key = "tls_config", .type = VG_CFG_T_SECTION, .offset = VG_SC_OFF(auth),                  \
        .sub = vg_agent_cfg_tls_schema, .doc = "TLS settings of https scrapes"                     \
    }

#define IGNORED_GLOBAL(k, t)                                                                       \
    {                                                                                              \
        .key = k, .type = VG_CFG_T_CUSTOM, .parse = vg_agent_cfg_ignored, .type_doc = t,           \
        .def_doc = "-", .doc = "Prometheus key; accepted and ignored by the agent"                 \
    }

/* Rows of the global schema beyond interval, timeout and external labels. */
#define GLOBAL_EXTRA_FIELDS                                                                        \
    {.key = "sample_limit",                                                                        \
     .type = VG_CFG_T_UINT,                                                                        \
     .offset = VG_AC_OFF(global_sample_limit),                                                     \
     .def = "0",                                                                                   \
     .doc = "default sample_limit of every job"},                                                  \
        {.key = "label_limit",                                                                     \
         .type = VG_CFG_T_UINT,                                                                    \
         .offset = VG_AC_OFF(global_label_limit),                                                  \
         .def = "0",                                                                               \
         .doc = "default label_limit of every job"},                                               \
        {.key = "body_size_limit",                                                                 \
         .type = VG_CFG_T_SIZE,                                                                    \
         .offset = VG_AC_OFF(global_body_size_limit),                                              \
         .def = "0",                                                                               \
         .doc = "default body_size_limit of every job"},                                           \
        IGNORED_GLOBAL("evaluation_interval", "duration"),                                         \
        IGNORED_GLOBAL("rule_query_offset", "duration"),                                           \
        IGNORED_GLOBAL("scrape_protocols", "list of strings"),                                     \
        IGNORED_GLOBAL("query_log_file", "string"),                                                \
        IGNORED_GLOBAL("scrape_failure_log_file", "string"),                                       \
        IGNORED_GLOBAL("target_limit", "integer"),                                                 \
        IGNORED_GLOBAL("label_name_length_limit", "integer"),                                      \
        IGNORED_GLOBAL("label_value_length_limit", "integer"),                                     \
        IGNORED_GLOBAL("keep_dropped_targets", "integer"),                                         \
        IGNORED_GLOBAL("metric_name_validation_scheme", "string"),                                 \
        IGNORED_GLOBAL("metric_name_escaping_scheme", "string"),                                   \
        IGNORED_GLOBAL("scrape_native_histograms", "boolean"),                                     \
        IGNORED_GLOBAL("convert_classic_histograms_to_nhcb", "boolean"),                           \
        IGNORED_GLOBAL("always_scrape_classic_histograms", "boolean"),                             \
        IGNORED_GLOBAL("extra_scrape_metrics", "boolean")

#endif
