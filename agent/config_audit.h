/*
 * config_audit.h (agent) - the schema of one `audit_logs:` entry.
 *
 * Kept apart from config.c as config_scrape.c is: the table, its defaults
 * and the checks that need the audit code (redaction rules are compiled once
 * at load, so a bad pattern fails the load with its position instead of
 * surfacing when the first line arrives).
 */
#ifndef VIGIL_AGENT_CONFIG_AUDIT_H
#define VIGIL_AGENT_CONFIG_AUDIT_H

#include "vigil/config.h"

/* Fields of vg_audit_log_config_t. */
extern const vg_cfg_field_t vg_audit_log_schema[];
/* LIST check of one entry: paths present, required_fields defaulted, redact
 * rules compiled, mapping keys canonical. */
vg_err_t vg_audit_log_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj);

#endif
