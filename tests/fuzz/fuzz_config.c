/*
 * fuzz_config.c - arbitrary bytes into both config parsers.
 *
 * The same input goes to the agent and the collector loaders so the YAML
 * tree builder, the schema decoder and every section callback see it. Either
 * may accept or reject; neither may crash, hang or leak (ASan checks leaks).
 * Accepted configs also go through the doc and duration printers.
 */
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "collector/config.h"
#include "vigil/duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *yaml = (const char *)data;
    vg_error err;
    vg_agent_config_t *a = NULL;
    if (vg_agent_config_parse("fuzz.yml", yaml, size, &a, &err) == VG_OK) {
        char buf[VG_DURATION_STRMAX];
        for (size_t i = 0; i < a->nscrape_configs; i++)
            vg_duration_format(a->scrape_configs[i].interval_ms, buf, sizeof buf);
        vg_agent_config_free(a);
    }
    vg_collector_config_t *c = NULL;
    if (vg_collector_config_parse("fuzz.yml", yaml, size, &c, &err) == VG_OK)
        vg_collector_config_free(c);
    return 0;
}
