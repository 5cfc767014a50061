/*
 * metadata.c - GET /api/v1/metadata: per metric name, the distinct
 * {type, help, unit} the tenant's senders reported (metadata/mdstore.h).
 *
 * Parameters are checked in Prometheus's order and with its words: limit,
 * then limit_per_metric, each strconv.Atoi or "... must be a number"; limit
 * < 0 means all names and 0 none, limit_per_metric <= 0 all entries, metric
 * picks one name. Prometheus builds the answer from a Go map, so which
 * names survive a limit is unspecified there; here the names come sorted
 * and a limit keeps the first ones, which makes answers repeatable.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "api/api_int.h"
#include "metadata/mdstore.h"

void vg_api_set_metadata(vg_api_t *api, vg_mdstore_t *md)
{
    api->md = md;
}

/* strconv.Atoi: optional sign, decimal digits, in int64 range. */
static int atoi_go(const char *s, long long *v)
{
    char *end;
    if (!*s || isspace((unsigned char)*s)) return 0;
    if ((*s == '+' || *s == '-') && !isdigit((unsigned char)s[1])) return 0;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return !*end && errno != ERANGE;
}

int vg_api_metadata(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    long long limit = -1, per = -1;
    int status;
    vg_buf_reset(out);
    if ((status = vg_api__tenant_ok(p, out))) return status;
    if (p->limit && p->limit[0] && !atoi_go(p->limit, &limit))
        return vg_api__fail(out, 400, "bad_data", "limit must be a number");
    if (p->limit_per_metric && p->limit_per_metric[0] && !atoi_go(p->limit_per_metric, &per))
        return vg_api__fail(out, 400, "bad_data", "limit_per_metric must be a number");
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":");
    if (!rc && api->md)
        rc = vg_mdstore_json(api->md, vg_api__tenant(p), p->metric, limit, per, p->now_ms, out);
    else if (!rc)
        rc = vg_buf_puts(out, "{}");
    if (!rc) rc = vg_buf_putc(out, '}');
    return rc ? vg_api__exec_error(out, rc, NULL) : 200;
}
