/*
 * expfmt.h - streaming parser for the Prometheus text exposition formats.
 *
 * A cursor over one scrape body held in memory: vg_expfmt_next() returns one
 * entry per line (sample, HELP, TYPE, UNIT, comment) and finally an EOF
 * entry. The parser never allocates per line: it finds the line in the
 * input without copying it, and the few strings it must hand out
 * NUL-terminated (names, unescaped label values, help text) are decoded
 * into one per-parser scratch buffer that is reused for every line. So an
 * entry's strings and label array are valid only until the next call.
 *
 * Two dialects share the line grammar and differ in the details, selected
 * by a format flag at creation:
 *   VG_EXPFMT_TEXT        Prometheus text format 0.0.4. Comments and blank
 *                         lines allowed; timestamps are int64 milliseconds;
 *                         a CR before the LF is accepted and dropped (so
 *                         CRLF bodies from Windows exporters parse the same).
 *   VG_EXPFMT_OPENMETRICS OpenMetrics 1.0. "# EOF" is required and must be
 *                         last; blank lines and free comments are errors;
 *                         CR is an error (the spec says LF only); timestamps
 *                         are float seconds (converted to ms, truncated);
 *                         exemplars after " # " are validated and skipped;
 *                         UNIT lines are returned; the _created samples of
 *                         counter/histogram/summary/gaugehistogram families
 *                         are flagged (entry.created) so callers can skip
 *                         them as Prometheus does.
 *
 * Numbers follow Go's strconv.ParseFloat as Prometheus does: optional sign,
 * decimal digits with optional fraction and exponent, hexadecimal floats
 * with a mandatory p exponent (0x1p-3), and "Inf"/"Infinity" (signed) and
 * "NaN" (unsigned), case-insensitive. Digit-separator underscores are not
 * accepted. Label values and HELP text decode \\, \" and \n; any other
 * escape is kept verbatim (as Prometheus does). Label values must be valid
 * UTF-8 without NUL bytes. Every non-empty input must end with a newline
 * (OpenMetrics: "# EOF" may omit it).
 *
 * Errors are final for the input: VG_EPARSE (or VG_ETOOLARGE for a line
 * over the cap) with "line L col C: reason" in the vg_error; later calls
 * return the same code. Nothing on any input can crash the parser.
 */
#ifndef VIGIL_EXPFMT_H
#define VIGIL_EXPFMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vigil/error.h"
#include "vigil/labels.h"

/* Prometheus's staleness marker: a NaN with this exact bit pattern. */
#define VG_STALE_NAN_BITS 0x7ff0000000000002ULL

/* Default cap on one line (bytes, newline excluded). */
#define VG_EXPFMT_DEFAULT_MAX_LINE (1u << 20)

typedef enum vg_expfmt_format {
    VG_EXPFMT_TEXT = 0,        /* text/plain; version=0.0.4 */
    VG_EXPFMT_OPENMETRICS = 1, /* application/openmetrics-text; version=1.0.0 */
} vg_expfmt_format;

typedef enum vg_expfmt_kind {
    VG_EXPFMT_SAMPLE = 0,
    VG_EXPFMT_HELP,
    VG_EXPFMT_TYPE,
    VG_EXPFMT_UNIT,    /* OpenMetrics only */
    VG_EXPFMT_COMMENT, /* text format only */
    VG_EXPFMT_EOF,     /* end of input, or "# EOF"; repeated on later calls */
} vg_expfmt_kind;

typedef enum vg_expfmt_mtype {
    VG_EXPFMT_UNTYPED = 0, /* "untyped" (text) / "unknown" (OpenMetrics) */
    VG_EXPFMT_COUNTER,
    VG_EXPFMT_GAUGE,
    VG_EXPFMT_HISTOGRAM,
    VG_EXPFMT_SUMMARY,
    VG_EXPFMT_GAUGEHISTOGRAM, /* OpenMetrics only, as are the three below */
    VG_EXPFMT_STATESET,
    VG_EXPFMT_INFO,
} vg_expfmt_mtype;

/* Byte lengths of one label's name and value (as strlen would give). */
typedef struct vg_expfmt_len {
    size_t name, value;
} vg_expfmt_len;

typedef struct vg_expfmt_entry {
    vg_expfmt_kind kind;
    unsigned line; /* 1-based line number of this entry */
    /* SAMPLE, HELP, TYPE, UNIT: the metric (or family) name, NUL-terminated. */
    const char *name;
    size_t name_len;
    /* HELP: unescaped text; UNIT: the unit; COMMENT: text after '#'. */
    const char *text;
    size_t text_len;
    vg_expfmt_mtype type; /* TYPE: the declared type */
    /* SAMPLE: labels in input order, without __name__; empty values kept. */
    const vg_label_t *labels;
    const vg_expfmt_len *label_lens; /* SAMPLE: lengths of labels[i], same index */
    size_t nlabels;
    double value;
    int has_ts; /* the sample carried a timestamp */
    int64_t ts_ms;
    int created;      /* OpenMetrics: a _created sample of a typed family */
    int has_exemplar; /* OpenMetrics: an exemplar followed (skipped) */
} vg_expfmt_entry;

typedef struct vg_expfmt_parser vg_expfmt_parser_t;

/* New parser over buf[0..len) (borrowed: must outlive the parser; need not
 * be NUL-terminated). NULL on ENOMEM. Free with vg_expfmt_free. */
vg_expfmt_parser_t *vg_expfmt_new(const char *buf, size_t len, vg_expfmt_format fmt);
/* Free the parser and its scratch. NULL is a no-op. */
void vg_expfmt_free(vg_expfmt_parser_t *p);
/* Cap one line's length (0 = default); past it next() fails with VG_ETOOLARGE. */
void vg_expfmt_set_max_line(vg_expfmt_parser_t *p, size_t max_line);
/* Parse the next entry into *e (valid until the next call or free). VG_OK and
 * kind EOF at the end; VG_EPARSE / VG_ETOOLARGE / VG_ENOMEM with "line:col: why". */
vg_err_t vg_expfmt_next(vg_expfmt_parser_t *p, vg_expfmt_entry *e, vg_error *err);
/* Skip decoding HELP and comment text: for callers that only want samples.
 * A comment's text stays ""; a HELP's text is its raw, still escaped bytes
 * (text_len of them, not NUL-terminated), enough to notice a change. The
 * lines are still checked as before. */
void vg_expfmt_set_skip_text(vg_expfmt_parser_t *p, int skip);
/* Borrow instead of copy: a SAMPLE's name, label names and plain label
 * values may point into the input, not NUL-terminated; use name_len and
 * label_lens. For callers that only use lengths (the scrape path). */
void vg_expfmt_set_borrow(vg_expfmt_parser_t *p, int borrow);
/* The one-pass path for common sample lines is on by default; off, every
 * line goes through the general scanner. Both give the same entries and
 * errors: the switch is for differential tests and fuzzing. */
void vg_expfmt_set_fast(vg_expfmt_parser_t *p, int on);
/* Line number of the entry last returned, or of the error (1-based; 0 before any). */
unsigned vg_expfmt_line(const vg_expfmt_parser_t *p);

/* Parse a whole number in Go ParseFloat syntax from s[0..n). VG_EPARSE if invalid. */
vg_err_t vg_expfmt_parse_float(const char *s, size_t n, double *out);
/* Format for a Content-Type header value (NULL/unknown -> VG_EXPFMT_TEXT). */
vg_expfmt_format vg_expfmt_format_from_content_type(const char *content_type);
/* Name of a metric type as written in TYPE lines ("counter", ..., "unknown"). */
const char *vg_expfmt_mtype_name(vg_expfmt_mtype t);

/* The staleness marker value, and a test for it (ordinary NaNs are not stale). */
static inline double vg_stale_nan(void)
{
    uint64_t bits = VG_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline int vg_is_stale_nan(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == VG_STALE_NAN_BITS;
}

#endif
