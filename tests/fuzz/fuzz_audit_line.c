/*
 * fuzz_audit_line.c - arbitrary bytes through the audit line parser with the
 * redaction presets on. Any line may be dead-lettered; none may crash, leak
 * or produce an accepted record whose re-serialised JSON is not valid UTF-8
 * or still holds a raw e-mail address the email preset should have caught.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *req[] = {"user_id"};
    vg_audit_schema s = {.max_line_bytes = 8192, .redact = redactor()};
    if (size && (data[0] & 1)) { /* odd first byte: the default seven required fields */
        s.required = req;
        s.nrequired = 1;
    }
    vg_audit_rec rec;
    vg_audit_reason why;
    char d[128];
    if (vg_audit_parse(&s, (const char *)data, size, 0, &rec, &why, d, sizeof d)) return 0;
    if (why >= VG_AUDIT_REASON__COUNT) __builtin_trap();
    if (why == VG_AUDIT_OK) {
        if (!rec.json || strlen(rec.json) != rec.json_len) __builtin_trap();
        if (!vg_audit_utf8_valid(rec.json, rec.json_len)) __builtin_trap();
        if (strstr(rec.json, "zz@example.com")) __builtin_trap();
    }
    vg_audit_rec_clear(&rec);
    return 0;
}
