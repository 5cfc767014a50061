/*
 * relabel_schema.c - the config table of one Prometheus relabel rule.
 *
 * relabel_configs, metric_relabel_configs (agent) and write_relabel_configs
 * (collector remote_write) are the same YAML decoded into vg_relabel_rule_t,
 * so they share one table: one set of messages and one generated doc.
 */
#include <stddef.h>

#include "vigil/relabel_schema.h"

#define RR(f) offsetof(vg_relabel_rule_t, f)
const vg_cfg_field_t vg_relabel_cfg_schema[] = {
    {.key = "source_labels",
     .type = VG_CFG_T_STRINGS,
     .offset = RR(source_labels),
     .count_offset = RR(nsource_labels),
     .doc = "labels whose values are joined with separator and matched against regex"},
    {.key = "separator",
     .type = VG_CFG_T_STRING,
     .offset = RR(separator),
     .def_doc = "`;`",
     .doc = "placed between the source label values"},
    {.key = "regex",
     .type = VG_CFG_T_STRING,
     .offset = RR(regex),
     .def_doc = "`(.*)`",
     .doc = "PCRE2 regex, fully anchored, `.` matches newline"},
    {.key = "modulus",
     .type = VG_CFG_T_UINT,
     .offset = RR(modulus),
     .def = "0",
     .doc = "hashmod: modulus of the MD5 of the source values"},
    {.key = "target_label",
     .type = VG_CFG_T_STRING,
     .offset = RR(target_label),
     .doc = "label written by replace, hashmod, lowercase, uppercase; compared by keepequal, "
            "dropequal"},
    {.key = "replacement",
     .type = VG_CFG_T_STRING,
     .offset = RR(replacement),
     .def_doc = "`$1`",
     .doc = "value written by replace ($1, ${1}, ${name} expand as in Go), name template of "
            "labelmap"},
    {.key = "action",
     .type = VG_CFG_T_STRING,
     .offset = RR(action),
     .def_doc = "`replace`",
     .doc = "replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, "
            "lowercase or uppercase"},
    {0},
};
#undef RR
