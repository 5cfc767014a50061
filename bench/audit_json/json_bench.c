/*
 * json_bench.c - parse + validate one realistic audit line with each JSON
 * library that can be installed here (jansson, json-c, yajl tree, cJSON), so
 * the agent's choice (agent/audit/audit.c) rests on a measurement. Validation
 * = the seven required fields present with the right JSON type. One core,
 * lines per second, best of 3 runs. Build and run: bench/audit_json/run.sh.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
/* jansson and json-c share symbol names, so each library gets its own binary. */
#if defined(USE_JANSSON)
#include <jansson.h>
#elif defined(USE_JSONC)
#include <json-c/json.h>
#elif defined(USE_YAJL)
#include <yajl/yajl_tree.h>
#else
#include <cjson/cJSON.h>
#endif

static const char LINE[] =
    "{\"timestamp\":\"2026-11-28T04:36:11.123+01:00\",\"user_id\":\"u-102934\","
    "\"session_id\":\"s-8f1c2e7a9b\",\"action\":\"document.read\",\"resource\":"
    "\"/tenants/acme/docs/4471\",\"result\":\"allow\",\"ip_address\":\"10.20.30.40\","
    "\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"email\":\"jane.doe@example.com\","
    "\"details\":{\"bytes\":18231,\"reason\":\"policy p-17\",\"tags\":[\"a\",\"b\"]}}";
static const char *F[] = {"timestamp", "user_id", "session_id", "action", "resource", "result",
                          "ip_address"};

#if defined(USE_JANSSON)
static int v_jansson(void)
{
    json_error_t e;
    json_t *r = json_loadb(LINE, sizeof LINE - 1, 0, &e);
    int ok = r && json_is_object(r);
    for (int i = 0; ok && i < 7; i++) ok = json_is_string(json_object_get(r, F[i]));
    json_decref(r);
    return ok;
}
#elif defined(USE_JSONC)
static int v_jsonc(void)
{
    json_object *r = json_tokener_parse(LINE), *v;
    int ok = r != NULL;
    for (int i = 0; ok && i < 7; i++)
        ok = json_object_object_get_ex(r, F[i], &v) && json_object_is_type(v, json_type_string);
    json_object_put(r);
    return ok;
}
#elif defined(USE_YAJL)
static int v_yajl(void)
{
    char eb[128];
    yajl_val r = yajl_tree_parse(LINE, eb, sizeof eb);
    int ok = r != NULL;
    for (int i = 0; ok && i < 7; i++) {
        const char *p[] = {F[i], NULL};
        ok = YAJL_IS_STRING(yajl_tree_get(r, p, yajl_t_any));
    }
    yajl_tree_free(r);
    return ok;
}
#else
static int v_cjson(void)
{
    cJSON *r = cJSON_ParseWithLength(LINE, sizeof LINE - 1);
    int ok = r != NULL;
    for (int i = 0; ok && i < 7; i++) ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, F[i]));
    cJSON_Delete(r);
    return ok;
}
#endif

static double run(int (*f)(void), int n)
{
    struct timespec a, b;
    double best = 0;
    for (int k = 0; k < 3; k++) {
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        for (int i = 0; i < n; i++)
            if (!f()) return -1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, r = n / s;
        if (r > best) best = r;
    }
    return best;
}

int main(void)
{
    int n = 200000;
#if defined(USE_JANSSON)
    printf("jansson %s: %.0f lines/s\n", JANSSON_VERSION, run(v_jansson, n));
#elif defined(USE_JSONC)
    printf("json-c  %s: %.0f lines/s\n", json_c_version(), run(v_jsonc, n));
#elif defined(USE_YAJL)
    printf("yajl    tree: %.0f lines/s\n", run(v_yajl, n));
#else
    printf("cJSON   %s: %.0f lines/s\n", cJSON_Version(), run(v_cjson, n));
#endif
    return 0;
}
