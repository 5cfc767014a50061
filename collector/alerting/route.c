/*
 * route.c - walking the routing tree and naming its routes.
 *
 * Matching is Alertmanager's: depth first, a route matches when all its
 * matchers do; among the children the first match wins unless it has
 * `continue`, and a route none of whose children match is itself the
 * answer. The route id is Alertmanager's Route.Key(): the parent's key, a
 * '/', then the sorted matchers in braces, so group keys ("{}/{...}:{...}")
 * and the PagerDuty dedup keys derived from them are the same as before.
 */
#include <stdlib.h>
#include <string.h>

#include "alerting/amconfig.h"

static int cmp_matcher(const void *pa, const void *pb)
{
    const vg_matcher_t *a = *(vg_matcher_t *const *)pa, *b = *(vg_matcher_t *const *)pb;
    int c = strcmp(vg_matcher_name(a), vg_matcher_name(b));
    if (!c) c = strcmp(vg_matcher_value(a), vg_matcher_value(b));
    if (!c) c = (int)vg_matcher_op(a) - (int)vg_matcher_op(b);
    return c;
}

vg_err_t vg_am_route_finish(vg_arena_t *arena, vg_am_route_t *r)
{
    vg_buf b;
    vg_buf_init(&b, 1u << 20);
    if (r->nmatchers > 1) qsort(r->matchers, r->nmatchers, sizeof *r->matchers, cmp_matcher);
    vg_err_t rc = VG_OK;
    if (r->parent) rc = vg_buf_printf(&b, "%s/", r->parent->id);
    if (!rc) rc = vg_buf_putc(&b, '{');
    for (size_t i = 0; i < r->nmatchers && !rc; i++) {
        if (i) rc = vg_buf_putc(&b, ',');
        if (!rc) rc = vg_am_matcher_format(r->matchers[i], &b);
    }
    if (!rc) rc = vg_buf_putc(&b, '}');
    if (!rc) {
        r->id = vg_arena_strndup(arena, (const char *)b.data, b.len);
        if (!r->id) rc = VG_ENOMEM;
    }
    vg_buf_free(&b);
    return rc;
}

static int route_matches(const vg_am_route_t *r, const vg_label_t *l, size_t n)
{
    for (size_t i = 0; i < r->nmatchers; i++) {
        const vg_matcher_t *m = r->matchers[i];
        if (!vg_matcher_matches(m, vg_labels_get(l, n, vg_matcher_name(m)))) return 0;
    }
    return 1;
}

/* Append the routes under r (which matched) to out; returns how many are in out;
 * *total counts all, including those past max. */
static size_t walk(const vg_am_route_t *r, const vg_label_t *l, size_t n, const vg_am_route_t **out,
                   size_t max, size_t cnt, size_t *total)
{
    size_t before = *total;
    for (size_t i = 0; i < r->nroutes; i++) {
        const vg_am_route_t *kid = &r->routes[i];
        if (!route_matches(kid, l, n)) continue;
        cnt = walk(kid, l, n, out, max, cnt, total);
        if (!kid->continue_matching) break;
    }
    if (*total == before) {
        if (cnt < max) out[cnt++] = r;
        (*total)++;
    }
    return cnt;
}

size_t vg_am_route_match(const vg_am_route_t *root, const vg_label_t *l, size_t n,
                         const vg_am_route_t **out, size_t max)
{
    size_t total = 0;
    if (!root || !route_matches(root, l, n)) return 0;
    (void)walk(root, l, n, out, max, 0, &total);
    return total;
}
