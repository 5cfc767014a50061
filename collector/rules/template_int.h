/*
 * template_int.h - internals shared by the template parser, executor and
 * function table (not a public interface).
 *
 * The parse tree and every value live in one arena per call, so a failing
 * expansion unwinds by freeing the arena; nothing is reference counted.
 * Positions are byte offsets into the user's text; error messages add the
 * 112 bytes of variable definitions Prometheus prepends on line 1, so
 * columns match what Prometheus prints.
 */
#ifndef VIGIL_RULES_TEMPLATE_INT_H
#define VIGIL_RULES_TEMPLATE_INT_H

#include "rules/template.h"
#include "vigil/arena.h"

#define TMPL_PREFIX_LEN 112       /* {{$labels := .Labels}}... Prometheus prepends */
#define TMPL_MAX_OUT    (1 << 20) /* expanded text cap */
#define TMPL_MAX_DEPTH  64        /* nesting of blocks, parens and template calls */
#define TMPL_MAX_STEPS  1000000   /* range iterations + commands per expansion */
#define TMPL_MAX_VARS   256
#define TMPL_MSG        480

typedef enum { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_MAP, V_SAMPLE, V_VEC, V_DATA, V_ARGS } vkind;

typedef struct tsample {
    vg_label_t *labels;
    size_t n;
    double value;
} tsample;

typedef struct tval {
    vkind k;
    int b;
    long long i;
    double f;
    const char *s;
    size_t slen;
    const vg_label_t *map; /* V_MAP */
    size_t n;              /* V_MAP, V_VEC, V_ARGS count */
    tsample *vec;          /* V_VEC; V_SAMPLE points at one */
    struct tval *args;     /* V_ARGS */
} tval;

typedef enum { A_FIELD, A_VAR, A_IDENT, A_STR, A_INT, A_FLOAT, A_BOOL, A_NIL, A_DOT, A_PIPE } akind;
struct tpipe;

typedef struct targ {
    akind k;
    size_t pos;
    const char *text; /* source text of the token, for messages */
    size_t tlen;
    const char *name; /* ident, var name, or string value */
    size_t nlen;
    const char **fields; /* .a.b after a var/dot/field */
    size_t nfields;
    long long i;
    double f;
    struct tpipe *pipe;
} targ;

typedef struct tcmd {
    size_t pos;
    targ *args;
    size_t nargs;
} tcmd;

typedef struct tpipe {
    size_t pos;
    const char *vars[2];
    size_t nvars;
    int is_assign; /* = rather than := */
    tcmd *cmds;
    size_t ncmds;
} tpipe;

typedef enum {
    N_TEXT,
    N_ACTION,
    N_IF,
    N_RANGE,
    N_WITH,
    N_TEMPLATE,
    N_LIST,
    N_BREAK,
    N_CONTINUE
} nkind;

typedef struct tnode {
    nkind k;
    size_t pos;
    const char *text; /* N_TEXT; N_TEMPLATE: name */
    size_t len;
    tpipe *pipe;
    struct tnode *list, *elselist; /* N_LIST children via next */
    struct tnode *next, *first;
} tnode;

typedef struct tdefine {
    const char *name;
    tnode *body;
    struct tdefine *next;
} tdefine;

typedef struct ttree {
    const char *name;
    const char *src;
    tnode *root;
    tdefine *defs;
} ttree;

/* Parse src; on failure msg gets Go's "template: NAME:LINE: ..." text. */
vg_err_t tmpl_parse(vg_arena_t *a, const char *name, const char *src, ttree *out, char *msg);

/* Executor state handed to functions. */
typedef struct texec {
    vg_arena_t *a;
    const ttree *t;
    const vg_tmpl_data *d;
    vg_buf *out;
    char msg[TMPL_MSG]; /* function error text ("first() called on ...") */
    int oom;
    int raw; /* msg is the whole message, not "error calling F: msg" */
} texec;

typedef vg_err_t (*tfunc)(texec *x, tval *argv, size_t argc, tval *res);
/* Look a function up; NULL when undefined. *nargs is -1 for variadic, and
 * *min the least it takes. */
tfunc tmpl_func(const char *name, size_t len, int *nargs);

/* Go-style formatting used by printing and printf. */
vg_err_t tmpl_print(texec *x, vg_buf *b, const tval *v);
vg_err_t tmpl_go_float(vg_buf *b, double v, int prec); /* prec<0: shortest %v */
const char *tmpl_type_name(const tval *v);
int tmpl_truth(const tval *v);

#endif
