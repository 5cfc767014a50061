/*
 * fuzz_audit_fast.c - differential: arbitrary bytes through vg_audit_parse
 * (fast path first) and vg_audit_parse_ref (jansson only), with the
 * redaction presets on. The two must agree on the reason, the detail, the
 * timestamp, every field and every byte of the re-serialised JSON; any
 * difference traps. The first byte picks the schema (default seven required
 * fields, or only user_id), so both the check and the accept paths are hit.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "audit/audit.h"

static vg_redactor_t *redactor(void)
{
    static vg_redactor_t *r;
    static const vg_redact_rule rules[] = {{.name = "email"},
                                           {.name = "credit_card"},
                                           {.name = "bearer_token"},
                                           {.name = "aws_access_key"},
                                           {.name = "password_field"}};
    if (!r && vg_redactor_new(rules, 5, &r, NULL)) __builtin_trap();
    return r;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *req[] = {"user_id"};
    vg_audit_schema s = {.max_line_bytes = 8192, .redact = redactor()};
    if (size && (data[0] & 1)) {
        s.required = req;
        s.nrequired = 1;
    }
    vg_audit_rec a, b;
    vg_audit_reason ra, rb;
    char da[128], db[128];
    vg_err_t ea = vg_audit_parse(&s, (const char *)data, size, 0, &a, &ra, da, sizeof da);
    vg_err_t eb = vg_audit_parse_ref(&s, (const char *)data, size, 0, &b, &rb, db, sizeof db);
    if (ea != eb) __builtin_trap();
    if (!ea) {
        if (ra != rb || strcmp(da, db) || a.ts_ms != b.ts_ms || a.json_len != b.json_len)
            __builtin_trap();
        if (!same_str(a.json, b.json)) __builtin_trap();
        for (int i = 0; i < VG_AF__COUNT; i++)
            if (!same_str(a.field[i], b.field[i])) __builtin_trap();
    }
    vg_audit_rec_clear(&a);
    vg_audit_rec_clear(&b);
    return 0;
}
