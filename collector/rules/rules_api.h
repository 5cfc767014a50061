/*
 * rules_api.h - the HTTP face of the rule manager: /api/v1/rules and
 * /api/v1/alerts, answered in Prometheus's JSON from the manager's state.
 */
#ifndef VIGIL_RULES_API_H
#define VIGIL_RULES_API_H

#include "rules/manager.h"
#include "vigil/httpd.h"

/* Register GET and POST /api/v1/rules (?type=alert|record) and
 * /api/v1/alerts on h (before vg_httpd_start). m may be NULL (empty
 * answers); it must outlive h. */
vg_err_t vg_rules_register_http(vg_httpd_t *h, vg_rules_t *m);

#endif
