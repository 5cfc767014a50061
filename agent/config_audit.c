/*
 * config_audit.c (agent) - the `audit_logs:` entry schema (config_audit.h).
 *
 * Defaults that are lists (required_fields) cannot be written in the table,
 * so the check fills them when the key is absent; an explicit [] means "no
 * field is required" and is kept.
 */
#include "config_audit.h"

#include <stddef.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/redact.h"
#include "config.h"

#define AL(f) offsetof(vg_audit_log_config_t, f)
#define RC(f) offsetof(vg_audit_redact_config_t, f)

static const vg_cfg_field_t redact_schema[] = {
    {.key = "name",
     .type = VG_CFG_T_STRING,
     .offset = RC(name),
     .flags = VG_CFG_REQUIRED,
     .doc = "a preset (email, credit_card, bearer_token, aws_access_key, password_field) or, "
            "with pattern, a label"},
    {.key = "pattern",
     .type = VG_CFG_T_STRING,
     .offset = RC(pattern),
     .doc = "PCRE2 pattern applied to every string value; absent = the preset called name. "
            "Field names are not rewritten: a line with a field name the pattern matches is "
            "dead-lettered (its raw text redacted)"},
    {.key = "replacement",
     .type = VG_CFG_T_STRING,
     .offset = RC(replacement),
     .def_doc = "`[REDACTED]`",
     .doc = "text that replaces each match"},
    {0},
};

const vg_cfg_field_t vg_audit_log_schema[] = {
    {.key = "paths",
     .type = VG_CFG_T_STRINGS,
     .offset = AL(paths),
     .count_offset = AL(npaths),
     .flags = VG_CFG_REQUIRED,
     .doc = "globs of the files to tail (include rotated names, e.g. app.jsonl*, so a file "
            "renamed while the agent is down is still finished)"},
    {.key = "exclude",
     .type = VG_CFG_T_STRINGS,
     .offset = AL(exclude),
     .count_offset = AL(nexclude),
     .doc = "globs matched against the full path and the base name, e.g. *.gz"},
    {.key = "tenant",
     .type = VG_CFG_T_STRING,
     .offset = AL(tenant),
     .def_doc = "`agent.tenant`",
     .doc = "tenant of these records (the Kafka key)"},
    {.key = "required_fields",
     .type = VG_CFG_T_STRINGS,
     .offset = AL(required_fields),
     .count_offset = AL(nrequired_fields),
     .def_doc = "`[timestamp, user_id, session_id, action, resource, result, ip_address]`",
     .doc = "fields every line must have (canonical names; see mapping)"},
    {.key = "mapping",
     .type = VG_CFG_T_KVMAP,
     .offset = AL(mapping),
     .count_offset = AL(nmapping),
     .doc = "canonical field name -> the name used by this source, e.g. {user_id: uid}"},
    {.key = "redact",
     .type = VG_CFG_T_LIST,
     .offset = AL(redact),
     .count_offset = AL(nredact),
     .sub = redact_schema,
     .elem_size = sizeof(vg_audit_redact_config_t),
     .doc = "redaction rules, applied in order to every field value (user_id included) before "
            "anything leaves the node; a user_id a rule matches is stored redacted, so erasure "
            "cannot find it by its raw value: use opaque user ids"},
    {.key = "max_line_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = AL(max_line_bytes),
     .def = "64KiB",
     .min = "64",
     .max = "16MiB",
     .doc = "longer lines go to the dead-letter path with reason too_long"},
    {.key = "read_from_head",
     .type = VG_CFG_T_BOOL,
     .offset = AL(read_from_head),
     .def = "false",
     .doc = "on the very first start (no checkpoint yet), read existing files from the start "
            "instead of the end"},
    {.key = "rate_limit",
     .type = VG_CFG_T_DOUBLE,
     .offset = AL(rate_limit),
     .def = "0",
     .min = "0",
     .doc = "lines per second for this entry (0 = unlimited); over it reading slows, nothing "
            "is dropped"},
    {.key = "rate_burst",
     .type = VG_CFG_T_UINT,
     .offset = AL(rate_burst),
     .def = "0",
     .def_doc = "`rate_limit`",
     .doc = "token-bucket burst in lines"},
    {0},
};

static const char *const default_required[] = {
    "timestamp", "user_id", "session_id", "action", "resource", "result", "ip_address",
};

static vg_err_t check_redact(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, vg_audit_log_config_t *a)
{
    for (size_t i = 0; i < a->nredact; i++) {
        vg_redact_rule r = {a->redact[i].name, a->redact[i].pattern, a->redact[i].replacement};
        vg_redactor_t *rd = NULL;
        vg_error e = {0};
        vg_err_t rc = vg_redactor_new(&r, 1, &rd, &e);
        vg_redactor_free(rd);
        if (rc == VG_ENOMEM) return vg_error_set(ctx->err, rc, "out of memory");
        if (rc)
            return vg_cfg_errorf(ctx, vg_cfg_seq_item(vg_cfg_map_get(node, "redact"), i),
                                 "%s.redact[%zu]: %s", ctx->path, i, vg_error_msg(&e, rc));
    }
    return VG_OK;
}

vg_err_t vg_audit_log_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_audit_log_config_t *a = obj;
    if (!a->npaths)
        return vg_cfg_errorf(ctx, node, "%s.paths: at least one glob is needed", ctx->path);
    for (size_t i = 0; i < a->nmapping; i++) {
        int known = 0;
        for (int f = 0; f < VG_AF__COUNT; f++)
            known |= !strcmp(a->mapping[i].key, vg_audit_field_name(f));
        if (!known)
            return vg_cfg_errorf(ctx, vg_cfg_map_get(node, "mapping"),
                                 "%s.mapping: \"%.64s\" is not a canonical field (timestamp, "
                                 "user_id, session_id, action, resource, result, ip_address)",
                                 ctx->path, a->mapping[i].key);
    }
    if (!vg_cfg_map_get(node, "required_fields")) {
        a->required_fields = (const char **)default_required;
        a->nrequired_fields = sizeof default_required / sizeof default_required[0];
    }
    return check_redact(ctx, node, a);
}
