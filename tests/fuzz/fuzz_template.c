/*
 * fuzz_template.c - untrusted alert templates (rule files come from users)
 * through vg_tmpl_check and vg_tmpl_expand.
 *
 * The whole input is the template text (cut at the first NUL). It is parsed
 * and expanded with fixed labels, a value and a `query` callback that
 * returns two samples, so range, with and the sample functions run too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/template.h"

static const vg_label_t L[] = {{"__name__", "up"}, {"instance", "h:9100"}, {"job", "node"}};

static vg_err_t q(void *ud, const char *s, vg_tmpl_sample **out, size_t *n, vg_error *err)
{
    (void)ud;
    if (s[0] == 'x') return vg_error_set(err, VG_EINVAL, "bad query");
    *out = calloc(2, sizeof **out);
    if (!*out) return VG_ENOMEM;
    (*out)[0] = (vg_tmpl_sample){L, 3, 1.5};
    (*out)[1] = (vg_tmpl_sample){L + 1, 2, -2};
    *n = 2;
    return VG_OK;
}

static void qfree(void *ud, vg_tmpl_sample *s, size_t n)
{
    (void)ud, (void)n;
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = '\0';
    vg_tmpl_check("__alert_F", src, NULL);
    vg_tmpl_data d = {.labels = L,
                      .nlabels = 3,
                      .value = 1234.5,
                      .external_url = "http://x",
                      .query = q,
                      .query_free = qfree,
                      .query_ud = NULL};
    vg_buf out;
    vg_buf_init(&out, 0);
    vg_tmpl_expand("__alert_F", src, &d, &out);
    vg_buf_free(&out);
    free(src);
    return 0;
}
