/*
 * config.h - YAML config documents and declarative schema decoding.
 *
 * Two layers. The document layer parses YAML with libyaml's event API into
 * our own small node tree that keeps the line and column of every node, so
 * any later check (a range, a cross-field rule in the agent) can still say
 * "agent.yml:7:3: ...". Duplicate mapping keys are refused while building the
 * tree, and aliases are weighed by what they expand to, so a small file
 * cannot blow up into a huge decode ("billion laughs").
 *
 * The schema layer decodes a mapping into a C struct from a table of field
 * descriptors: key, type, offset, default written as a string, min/max,
 * sub-schema or callback, and a one-line description. A table rather than
 * hand-written code per key means unknown keys are always errors (collectd's
 * warnings hide typos), defaults are applied in one place, and --help and
 * docs/configuration.md are printed from the same table that parses. All
 * decoded strings and arrays live in the caller's arena, which the resulting
 * config owns, so a reload builds everything fresh and swaps it in whole.
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"

/* Caps on what a config document may be; over them is VG_ETOOLARGE. */
#define VG_CFG_MAX_BYTES (16u << 20) /* input size */
#define VG_CFG_MAX_NODES 1000000u    /* nodes, counting what aliases expand to */
#define VG_CFG_MAX_DEPTH 64          /* nesting of maps and sequences */

/* A string pair in document order (params, Kafka properties). */
typedef struct vg_kv {
    const char *key;
    const char *value;
} vg_kv_t;

/* ---- documents and nodes ---- */
typedef struct vg_cfg_doc vg_cfg_doc_t;
typedef struct vg_cfg_node vg_cfg_node_t;

typedef enum vg_cfg_kind {
    VG_CFG_NULL = 0, /* ~, null, or an empty value */
    VG_CFG_SCALAR,
    VG_CFG_SEQ,
    VG_CFG_MAP,
} vg_cfg_kind;

/* Parse YAML text (one document; none at all gives a null root). name is used
 * in messages ("file:line:col: ..."). Caller frees *out with vg_cfg_doc_free. */
vg_err_t vg_cfg_doc_parse(const char *name, const char *text, size_t len, vg_cfg_doc_t **out,
                          vg_error *err);
/* Read and parse a file (at most VG_CFG_MAX_BYTES); messages name path. */
vg_err_t vg_cfg_doc_load(const char *path, vg_cfg_doc_t **out, vg_error *err);
/* Free a document and all its nodes. NULL is a no-op. */
void vg_cfg_doc_free(vg_cfg_doc_t *d);
/* The root node (never NULL for a parsed document). */
const vg_cfg_node_t *vg_cfg_doc_root(const vg_cfg_doc_t *d);
/* The name given at parse/load time. */
const char *vg_cfg_doc_name(const vg_cfg_doc_t *d);

/* Kind of n; VG_CFG_NULL for a NULL pointer. */
vg_cfg_kind vg_cfg_node_kind(const vg_cfg_node_t *n);
/* Text of a scalar (NUL-terminated, no embedded NULs), NULL for other kinds. */
const char *vg_cfg_node_text(const vg_cfg_node_t *n);
/* 1-based line and column where the node starts (0 for NULL). */
int vg_cfg_node_line(const vg_cfg_node_t *n);
int vg_cfg_node_col(const vg_cfg_node_t *n);
/* Number of pairs of a map or items of a sequence; 0 otherwise. */
size_t vg_cfg_node_len(const vg_cfg_node_t *n);
/* Key (always a scalar) and value of pair i of a map; NULL when out of range. */
const vg_cfg_node_t *vg_cfg_map_key(const vg_cfg_node_t *n, size_t i);
const vg_cfg_node_t *vg_cfg_map_value(const vg_cfg_node_t *n, size_t i);
/* Value for key in a map, or NULL when n is not a map or has no such key. */
const vg_cfg_node_t *vg_cfg_map_get(const vg_cfg_node_t *n, const char *key);
/* Item i of a sequence; NULL when out of range. */
const vg_cfg_node_t *vg_cfg_seq_item(const vg_cfg_node_t *n, size_t i);
/* True for null, an empty sequence or an empty map. */
int vg_cfg_node_empty(const vg_cfg_node_t *n);

/* ---- decoding ---- */
typedef struct vg_cfg_ctx {
    const vg_cfg_doc_t *doc; /* for file names in messages */
    vg_arena_t *arena;       /* receives every decoded string and array */
    vg_error *err;           /* may be NULL */
    void *user;              /* free for the caller's callbacks */
    int overlay;             /* when set, absent or null keys leave dst untouched instead
                                of getting their default (per-tenant overrides) */
    char path[256];          /* where decoding is, e.g. "scrape_configs[0]"; "" = top level */
} vg_cfg_ctx_t;

/* Set up a context; path starts at the top level. */
void vg_cfg_ctx_init(vg_cfg_ctx_t *ctx, const vg_cfg_doc_t *doc, vg_arena_t *arena, vg_error *err);

/* Fill ctx->err with "file:line:col: <message>" at node n and return VG_ECONFIG. */
vg_err_t vg_cfg_errorf(const vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef enum vg_cfg_type {
    VG_CFG_T_STRING,   /* const char *; .choices restricts it, e.g. "http|https" */
    VG_CFG_T_BOOL,     /* int 0/1: true/false, yes/no, on/off */
    VG_CFG_T_INT,      /* int64_t */
    VG_CFG_T_UINT,     /* uint64_t */
    VG_CFG_T_DOUBLE,   /* double, finite */
    VG_CFG_T_DURATION, /* int64_t milliseconds, Prometheus syntax */
    VG_CFG_T_SIZE,     /* uint64_t bytes: 512MiB, 1GB, 1048576 */
    VG_CFG_T_LABELS,   /* vg_label_t * sorted + size_t at .count_offset; map name -> value */
    VG_CFG_T_STRINGS,  /* const char ** + size_t at .count_offset; sequence of scalars */
    VG_CFG_T_KVMAP,    /* vg_kv_t * + size_t at .count_offset; map of scalars, document order */
    VG_CFG_T_SECTION,  /* nested map decoded with .sub into dst + offset */
    VG_CFG_T_LIST,     /* sequence of maps decoded with .sub into an array of .elem_size
                          elements: pointer at offset, size_t at .count_offset */
    VG_CFG_T_CUSTOM,   /* .parse decides */
} vg_cfg_type;

/* Callback for VG_CFG_T_CUSTOM: decode node (NULL when the key is absent or null,
 * so it can set its default) into field = dst + offset; obj is the whole dst.
 * Must report errors through vg_cfg_errorf. */
typedef vg_err_t (*vg_cfg_parse_fn)(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field,
                                    void *obj);
/* Callback run after a SECTION or each LIST element is decoded, for cross-field
 * checks; node is the element's map (may be NULL for an absent section). */
typedef vg_err_t (*vg_cfg_check_fn)(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj);

#define VG_CFG_REQUIRED 0x1u /* absent or null is an error */

typedef struct vg_cfg_field {
    const char *key; /* NULL ends a schema */
    vg_cfg_type type;
    size_t offset;       /* of the value in dst */
    size_t count_offset; /* LABELS, STRINGS, KVMAP, LIST: of the size_t count */
    const char *def;     /* default, written as in YAML; NULL = zero/NULL/empty */
    const char *min;     /* numeric types: inclusive bounds written as in YAML; NULL = none */
    const char *max;
    const char *choices;            /* STRING: allowed values separated by '|' */
    const struct vg_cfg_field *sub; /* SECTION, LIST */
    size_t elem_size;               /* LIST */
    vg_cfg_parse_fn parse;          /* CUSTOM */
    vg_cfg_check_fn check;          /* SECTION, LIST: optional */
    const char *type_doc;           /* CUSTOM: type name for docs, e.g. "map of lists" */
    const char *def_doc;            /* docs: default when not a literal (e.g. "the host name");
                                       also the documented default of a CUSTOM field */
    unsigned flags;                 /* VG_CFG_REQUIRED */
    const char *doc;                /* one-line description */
} vg_cfg_field_t;

/* Decode node (a map, or null/absent for "all defaults") into dst by schema:
 * applies defaults, rejects unknown keys, type and range errors with
 * "file:line:col: ..." messages (VG_ECONFIG). Strings go into ctx->arena. */
vg_err_t vg_cfg_decode(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, const vg_cfg_field_t *schema,
                       void *dst);

/* Scalar decoders with the same messages as vg_cfg_decode, for callbacks.
 * A string is copied into ctx->arena. */
vg_err_t vg_cfg_get_string(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, const char **out);
vg_err_t vg_cfg_get_bool(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, int *out);
vg_err_t vg_cfg_get_uint(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, uint64_t *out);
vg_err_t vg_cfg_get_duration(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, int64_t *out);
vg_err_t vg_cfg_get_size(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, uint64_t *out);

/* VG_CFG_T_CUSTOM parser for keys owned by a later capability: accepts only
 * absent, null, [] or {} and otherwise fails with
 * "<file:line:col>: <section>: <key> is not supported by this build yet". */
vg_err_t vg_cfg_unsupported(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj);

/* Append a Markdown reference of schema to out: one table per section with
 * key (dotted under prefix), type, default and description, then nested
 * sections and list elements. prefix may be NULL or "" for the top level. */
vg_err_t vg_cfg_schema_doc(const vg_cfg_field_t *schema, const char *prefix, vg_buf *out);

#endif
