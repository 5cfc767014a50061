/*
 * relabel_schema.h - the config table of one Prometheus relabel rule
 * (common/relabel_schema.c), decoding into vg_relabel_rule_t: the element
 * schema of relabel_configs, metric_relabel_configs and write_relabel_configs.
 * Apart from relabel.h so that relabeling does not depend on the config code.
 */
#ifndef VIGIL_RELABEL_SCHEMA_H
#define VIGIL_RELABEL_SCHEMA_H

#include "vigil/config.h"
#include "vigil/relabel.h"

extern const vg_cfg_field_t vg_relabel_cfg_schema[];

#endif
