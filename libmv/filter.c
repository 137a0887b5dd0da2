/*
 * filter.c - the --filter expression language of filter.h: a recursive
 * descent parser that type-checks against the schema and folds every
 * predicate into one leaf over one column (a range, a sorted set, a like
 * pattern), and an evaluator that scans each leaf's column over a chunk
 * of rows in a tight loop into bitmaps on its stack.  It knows nothing of
 * segments, snapshots or the protocol.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "filter.h"

#define CHUNK 1024			/* rows per evaluation step */
#define WORDS (CHUNK / 64)
#define DEPTH_MAX 64			/* nesting of ( and not */
#define IN_LINEAR_MAX 8			/* longer in-lists are bisected, */
#define IN_BITS_MAX 65536		/* or a bitset when their span fits */

#define TWO63 9223372036854775808.0	/* 2^63, exact as a double */

enum nkind {
	N_CONST,	/* u.val */
	N_AND, N_OR, N_NOT,
	N_IRANGE,	/* int64 column: lo <= x <= hi */
	N_FRANGE,	/* float64 column: lo <= x <= hi (NaN never) */
	N_SRANGE,	/* string column, bounds optional */
	N_SEQ,		/* string column == u.seq */
	N_IIN, N_FIN, N_SIN,	/* sorted, distinct sets */
	N_LIKE,
};

enum lkind { L_EXACT, L_PREFIX, L_SUFFIX, L_CONTAINS, L_GENERAL };

/* Like tokens: 0..255 a byte, then these. */
#define LT_ANY 256			/* % */
#define LT_ONE 257			/* _ */

struct node {
	enum nkind kind;
	int col;		/* fields[] index, -1 for id */
	int neg;		/* the leaf's result is inverted */
	union {
		int val;
		struct {
			struct node **v;
			int n;
		} kids;
		struct {
			int64_t lo, hi;
		} ir;
		struct {
			double lo, hi;
		} fr;
		struct {
			struct mv_filter_str lo, hi;
			int has_lo, has_hi, lo_incl, hi_incl;
		} sr;
		struct mv_filter_str seq;
		struct {
			int64_t *v;
			size_t n;
			uint64_t *bits;	/* v as a bitset from lo, or NULL */
			int64_t lo;
			uint64_t span;	/* v[n - 1] - lo */
		} iin;
		struct {
			double *v;
			size_t n;
		} fin;
		struct {
			struct mv_filter_str *v;
			size_t n;
		} sin;
		struct {
			enum lkind kind;
			char *lit;	/* the fast paths' literal */
			size_t litlen;
			/*
			 * L_EXACT, L_PREFIX: lit as a string (a bound's
			 * value); L_PREFIX: the least string above every
			 * string lit starts (succ.p NULL when lit is all
			 * 0xff bytes), stored after lit.
			 */
			struct mv_filter_str str, succ;
			uint16_t *tok;	/* L_GENERAL's pattern */
			size_t ntok;
		} like;
	} u;
};

struct mv_filter {
	struct node *root;
	uint64_t mask;
	char *pool;		/* the decoded string literals */
};

/* ---- lexer ---------------------------------------------------------- */

enum tok {
	T_END, T_IDENT, T_INT, T_FLOAT, T_STR, T_TRUE, T_FALSE,
	T_AND, T_OR, T_NOT, T_IN, T_LIKE,
	T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE,
	T_LP, T_RP, T_LB, T_RB, T_COMMA, T_MINUS, T_PLUS,
};

struct parser {
	const char *s;
	size_t len, pos;	/* pos: where the next token starts */
	enum tok tok;		/* the current token */
	size_t tpos, tlen;
	uint64_t umag;		/* T_INT: its magnitude */
	double fval;		/* T_FLOAT */
	struct mv_filter_str str;	/* T_STR, decoded into pool */
	char *pool;
	size_t poollen;
	const struct mv_field *fields;
	int nfields;
	uint64_t mask;
	int depth;
	int failed;
	struct mv_err *err;
};

static void perr(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct parser *p, size_t pos, const char *fmt, ...)
{
	char msg[MV_ERR_LEN];
	va_list ap;

	if (p->failed)
		return;
	p->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mv_err_set(p->err, MV_EUSAGE, "col %zu: %s", pos + 1, msg);
}

static void poom(struct parser *p)
{
	if (!p->failed) {
		p->failed = 1;
		mv_err_set(p->err, MV_EINTERNAL, "out of memory");
	}
}

static int is_ident0(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_ident(int c)
{
	return is_ident0(c) || is_digit(c);
}

/* The current token as the error messages show it. */
static void tok_text(const struct parser *p, char *buf, size_t size)
{
	if (p->tok == T_END)
		snprintf(buf, size, "the end");
	else
		snprintf(buf, size, "'%.*s'%s", (int)(p->tlen > 24 ? 24 :
						      p->tlen),
			 p->s + p->tpos, p->tlen > 24 ? "..." : "");
}

static int kw(const char *w, size_t n, const char *lower, const char *upper,
	      const char *title)
{
	size_t k = strlen(lower);

	if (n != k)
		return 0;
	return !memcmp(w, lower, n) || !memcmp(w, upper, n) ||
	       (title && !memcmp(w, title, n));
}

static void lex_number(struct parser *p)
{
	const char *s = p->s;
	size_t i = p->pos, start = i;
	int isfloat = 0;

	while (is_digit(s[i]))
		i++;
	if (s[i] == '.') {
		isfloat = 1;
		i++;
		while (is_digit(s[i]))
			i++;
	}
	if ((s[i] == 'e' || s[i] == 'E') &&
	    (is_digit(s[i + 1]) ||
	     ((s[i + 1] == '+' || s[i + 1] == '-') && is_digit(s[i + 2])))) {
		isfloat = 1;
		i += 2;
		while (is_digit(s[i]))
			i++;
	}
	p->tlen = i - start;
	p->pos = i;
	if (is_ident(s[i]) || s[i] == '.') {
		perr(p, start, "bad number '%.*s'", (int)(i - start + 1 > 24 ?
							 24 : i - start + 1),
		     s + start);
		return;
	}
	if (isfloat) {
		char *end;

		p->tok = T_FLOAT;
		p->fval = strtod(s + start, &end);
		if (end != s + i)
			perr(p, start, "bad number");
		return;
	}
	p->tok = T_INT;
	p->umag = 0;
	for (size_t j = start; j < i; j++) {
		unsigned d = (unsigned)(s[j] - '0');

		if (p->umag > (UINT64_MAX - d) / 10) {
			perr(p, start, "integer out of range");
			return;
		}
		p->umag = p->umag * 10 + d;
	}
}

/*
 * A quoted string: backslash escapes either quote and itself; before any
 * other byte it stays, for like's \% and \_.
 */
static void lex_string(struct parser *p)
{
	const char *s = p->s;
	char q = s[p->pos];
	size_t i = p->pos + 1;
	char *out = p->pool + p->poollen;
	size_t n = 0;

	for (;;) {
		if (i >= p->len) {
			perr(p, p->tpos, "string not closed");
			return;
		}
		if (s[i] == q)
			break;
		if (s[i] == '\\' && i + 1 < p->len &&
		    (s[i + 1] == '\\' || s[i + 1] == '"' || s[i + 1] == '\'')) {
			out[n++] = s[i + 1];
			i += 2;
			continue;
		}
		out[n++] = s[i++];
	}
	p->tok = T_STR;
	p->str.p = out;
	p->str.len = n;
	p->poollen += n;
	p->pos = i + 1;
	p->tlen = p->pos - p->tpos;
}

static void next(struct parser *p)
{
	const char *s = p->s;
	size_t i = p->pos;

	if (p->failed) {
		p->tok = T_END;
		return;
	}
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	p->pos = p->tpos = i;
	p->tlen = 1;
	if (!s[i]) {
		p->tok = T_END;
		p->tlen = 0;
		return;
	}
	if (is_ident0(s[i])) {
		size_t n = 0;

		while (is_ident(s[i + n]))
			n++;
		p->tlen = n;
		p->pos = i + n;
		p->tok = T_IDENT;
		if (kw(s + i, n, "and", "AND", NULL))
			p->tok = T_AND;
		else if (kw(s + i, n, "or", "OR", NULL))
			p->tok = T_OR;
		else if (kw(s + i, n, "not", "NOT", NULL))
			p->tok = T_NOT;
		else if (kw(s + i, n, "in", "IN", NULL))
			p->tok = T_IN;
		else if (kw(s + i, n, "like", "LIKE", NULL))
			p->tok = T_LIKE;
		else if (kw(s + i, n, "true", "TRUE", "True"))
			p->tok = T_TRUE;
		else if (kw(s + i, n, "false", "FALSE", "False"))
			p->tok = T_FALSE;
		return;
	}
	if (is_digit(s[i]) || (s[i] == '.' && is_digit(s[i + 1]))) {
		lex_number(p);
		return;
	}
	if (s[i] == '"' || s[i] == '\'') {
		lex_string(p);
		return;
	}
	p->pos = i + 1;
	switch (s[i]) {
	case '(': p->tok = T_LP; return;
	case ')': p->tok = T_RP; return;
	case '[': p->tok = T_LB; return;
	case ']': p->tok = T_RB; return;
	case ',': p->tok = T_COMMA; return;
	case '-': p->tok = T_MINUS; return;
	case '+': p->tok = T_PLUS; return;
	case '<':
	case '>':
		if (s[i + 1] == '=') {
			p->tok = s[i] == '<' ? T_LE : T_GE;
			p->pos++;
			p->tlen = 2;
		} else {
			p->tok = s[i] == '<' ? T_LT : T_GT;
		}
		return;
	case '=':
	case '!':
		if (s[i + 1] == '=') {
			p->tok = s[i] == '=' ? T_EQ : T_NE;
			p->pos++;
			p->tlen = 2;
			return;
		}
		if (s[i] == '!') {
			p->tok = T_NOT;
			return;
		}
		perr(p, i, "'=' is not an operator: use '=='");
		break;
	case '&':
	case '|':
		if (s[i + 1] == s[i]) {
			p->tok = s[i] == '&' ? T_AND : T_OR;
			p->pos++;
			p->tlen = 2;
			return;
		}
		perr(p, i, "'%c' is not an operator: use '%c%c'", s[i], s[i],
		     s[i]);
		break;
	default:
		if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f)
			perr(p, i, "unexpected '%c'", s[i]);
		else
			perr(p, i, "unexpected byte 0x%02x",
			     (unsigned char)s[i]);
	}
	p->tok = T_END;
}

/* ---- nodes ---------------------------------------------------------- */

static void node_free(struct node *n)
{
	if (!n)
		return;
	switch (n->kind) {
	case N_AND:
	case N_OR:
	case N_NOT:
		for (int i = 0; i < n->u.kids.n; i++)
			node_free(n->u.kids.v[i]);
		free(n->u.kids.v);
		break;
	case N_IIN:
		free(n->u.iin.v);
		free(n->u.iin.bits);
		break;
	case N_FIN:
		free(n->u.fin.v);
		break;
	case N_SIN:
		free(n->u.sin.v);
		break;
	case N_LIKE:
		free(n->u.like.lit);
		free(n->u.like.tok);
		break;
	default:
		break;
	}
	free(n);
}

static struct node *node_new(struct parser *p, enum nkind kind, int col)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n) {
		poom(p);
		return NULL;
	}
	n->kind = kind;
	n->col = col;
	return n;
}

static struct node *node_const(struct parser *p, int val)
{
	struct node *n = node_new(p, N_CONST, 0);

	if (n)
		n->u.val = val;
	return n;
}

/* A rough cost per row, so that an and/or tries its cheap operands first. */
static int node_cost(const struct node *n)
{
	switch (n->kind) {
	case N_CONST:
		return 0;
	case N_IRANGE:
	case N_FRANGE:
		return 1;
	case N_IIN:
	case N_FIN:
		return 2;
	case N_SEQ:
	case N_SRANGE:
	case N_SIN:
		return 3;
	case N_LIKE:
		return n->u.like.kind == L_GENERAL ? 5 : 4;
	default:
		return 6;
	}
}

/* Append b to a's and/or (a is of kind k, or becomes one). */
static struct node *node_join(struct parser *p, enum nkind k, struct node *a,
			      struct node *b)
{
	struct node *j = a;
	int nb = b->kind == k ? b->u.kids.n : 1;
	struct node **v;

	if (a->kind != k) {
		j = node_new(p, k, 0);
		if (!j)
			goto fail;
		j->u.kids.v = malloc(sizeof(*v));
		if (!j->u.kids.v) {
			free(j);
			goto oom;
		}
		j->u.kids.v[0] = a;
		j->u.kids.n = 1;
	}
	v = realloc(j->u.kids.v, (j->u.kids.n + nb) * sizeof(*v));
	if (!v) {
		if (j != a)
			node_free(j);
		else
			node_free(a);
		goto oom;
	}
	j->u.kids.v = v;
	if (b->kind == k) {
		memcpy(v + j->u.kids.n, b->u.kids.v, nb * sizeof(*v));
		b->u.kids.n = 0;
		node_free(b);
	} else {
		v[j->u.kids.n] = b;
	}
	j->u.kids.n += nb;
	/* Insertion sort by cost: stable, and the lists are short. */
	for (int i = 1; i < j->u.kids.n; i++) {
		struct node *x = v[i];
		int c = node_cost(x), k2 = i;

		while (k2 > 0 && node_cost(v[k2 - 1]) > c) {
			v[k2] = v[k2 - 1];
			k2--;
		}
		v[k2] = x;
	}
	return j;
oom:
	poom(p);
	node_free(b);
	return NULL;
fail:
	node_free(a);
	node_free(b);
	return NULL;
}

static struct node *node_not(struct parser *p, struct node *a)
{
	struct node *n;

	if (!a)
		return NULL;
	switch (a->kind) {
	case N_CONST:
		a->u.val = !a->u.val;
		return a;
	case N_NOT:
		n = a->u.kids.v[0];
		a->u.kids.n = 0;
		node_free(a);
		return n;
	case N_AND:
	case N_OR:
		break;
	default:
		a->neg = !a->neg;
		return a;
	}
	n = node_new(p, N_NOT, 0);
	if (!n || !(n->u.kids.v = malloc(sizeof(struct node *)))) {
		free(n);
		node_free(a);
		poom(p);
		return NULL;
	}
	n->u.kids.v[0] = a;
	n->u.kids.n = 1;
	return n;
}

/* ---- literals and types --------------------------------------------- */

enum ltype { LIT_INT, LIT_FLOAT, LIT_STR, LIT_BOOL };

struct lit {
	enum ltype type;
	int64_t i;		/* LIT_INT, LIT_BOOL */
	double f;
	struct mv_filter_str s;
	size_t pos;
};

static int is_lit_start(enum tok t)
{
	return t == T_INT || t == T_FLOAT || t == T_STR || t == T_TRUE ||
	       t == T_FALSE || t == T_MINUS || t == T_PLUS;
}

static int parse_lit(struct parser *p, struct lit *l)
{
	int neg = 0;
	char what[40];

	l->pos = p->tpos;
	if (p->tok == T_MINUS || p->tok == T_PLUS) {
		neg = p->tok == T_MINUS;
		next(p);
		if (p->tok != T_INT && p->tok != T_FLOAT) {
			tok_text(p, what, sizeof(what));
			perr(p, p->tpos, "expected a number after the sign, "
			     "got %s", what);
			return -1;
		}
	}
	switch (p->tok) {
	case T_INT:
		l->type = LIT_INT;
		if (neg && p->umag <= (uint64_t)INT64_MAX + 1) {
			l->i = p->umag == (uint64_t)INT64_MAX + 1 ? INT64_MIN :
			       -(int64_t)p->umag;
		} else if (!neg && p->umag <= (uint64_t)INT64_MAX) {
			l->i = (int64_t)p->umag;
		} else {
			perr(p, l->pos, "integer out of range");
			return -1;
		}
		break;
	case T_FLOAT:
		l->type = LIT_FLOAT;
		l->f = neg ? -p->fval : p->fval;
		break;
	case T_STR:
		l->type = LIT_STR;
		l->s = p->str;
		break;
	case T_TRUE:
	case T_FALSE:
		l->type = LIT_BOOL;
		l->i = p->tok == T_TRUE;
		break;
	default:
		tok_text(p, what, sizeof(what));
		perr(p, p->tpos, "expected a value, got %s", what);
		return -1;
	}
	next(p);
	return p->failed ? -1 : 0;
}

/* The type of field col (-1: id). */
static enum mv_ftype col_type(const struct parser *p, int col)
{
	return col < 0 ? MV_INT64 : p->fields[col].type;
}

static const char *col_name(const struct parser *p, int col)
{
	return col < 0 ? "id" : p->fields[col].name;
}

static const char *lit_name(enum ltype t)
{
	return t == LIT_STR ? "a string" : t == LIT_BOOL ? "true/false" :
	       "a number";
}

/* 0 if l may be compared with column col, else an error. */
static int lit_check(struct parser *p, int col, const struct lit *l)
{
	enum mv_ftype t = col_type(p, col);
	int ok = t == MV_STRING ? l->type == LIT_STR :
		 t == MV_BOOL ? l->type == LIT_BOOL :
		 l->type == LIT_INT || l->type == LIT_FLOAT;

	if (ok)
		return 0;
	perr(p, l->pos, "'%s' is %s, compared with %s", col_name(p, col),
	     t == MV_STRING ? "a string" : mv_ftype_name(t),
	     lit_name(l->type));
	return -1;
}

/* Exactly how double d stands to int64 c: -1, 0 or 1 (d not NaN). */
static int cmp_di(double d, int64_t c)
{
	double t;
	int64_t ti;

	if (d < -TWO63)
		return -1;
	if (d >= TWO63)
		return 1;
	t = trunc(d);
	ti = (int64_t)t;
	if (ti != c)
		return ti < c ? -1 : 1;
	return d > t ? 1 : d < t ? -1 : 0;
}

/*
 * Ranges: every comparison of a column with a literal is a range of the
 * column's values, and a chain the meet of two.
 */
struct range {
	int empty;
	int64_t ilo, ihi;
	double flo, fhi;
	struct mv_filter_str slo, shi;
	int has_slo, has_shi, slo_incl, shi_incl;
};

static void range_init(struct range *r)
{
	memset(r, 0, sizeof(*r));
	r->ilo = INT64_MIN;
	r->ihi = INT64_MAX;
	r->flo = -INFINITY;
	r->fhi = INFINITY;
}

static int scmp(struct mv_filter_str a, struct mv_filter_str b)
{
	size_t m = a.len < b.len ? a.len : b.len;
	int c = m ? memcmp(a.p, b.p, m) : 0;

	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

static void ilo(struct range *r, int64_t v)
{
	if (v > r->ilo)
		r->ilo = v;
}

static void ihi(struct range *r, int64_t v)
{
	if (v < r->ihi)
		r->ihi = v;
}

/* column op l, intersected into r; op is T_EQ, T_LT, T_LE, T_GT or T_GE. */
static void range_add(struct range *r, enum mv_ftype t, enum tok op,
		      const struct lit *l)
{
	if (t == MV_STRING) {
		int lo = op == T_GT || op == T_GE || op == T_EQ;
		int hi = op == T_LT || op == T_LE || op == T_EQ;
		int incl = op == T_EQ || op == T_LE || op == T_GE;

		if (lo && (!r->has_slo || scmp(l->s, r->slo) > 0 ||
			   (!scmp(l->s, r->slo) && !incl))) {
			r->slo = l->s;
			r->slo_incl = incl;
			r->has_slo = 1;
		}
		if (hi && (!r->has_shi || scmp(l->s, r->shi) < 0 ||
			   (!scmp(l->s, r->shi) && !incl))) {
			r->shi = l->s;
			r->shi_incl = incl;
			r->has_shi = 1;
		}
		if (r->has_slo && r->has_shi) {
			int c = scmp(r->slo, r->shi);

			if (c > 0 || (!c && !(r->slo_incl && r->shi_incl)))
				r->empty = 1;
		}
		return;
	}
	if (t == MV_INT64 && l->type == LIT_INT) {
		int64_t c = l->i;

		switch (op) {
		case T_EQ: ilo(r, c); ihi(r, c); break;
		case T_LT:
			if (c == INT64_MIN)
				r->empty = 1;
			else
				ihi(r, c - 1);
			break;
		case T_LE: ihi(r, c); break;
		case T_GT:
			if (c == INT64_MAX)
				r->empty = 1;
			else
				ilo(r, c + 1);
			break;
		case T_GE: ilo(r, c); break;
		default: break;
		}
	} else if (t == MV_INT64) {
		/* An int64 column and a float: integral bounds, exactly. */
		double c = l->f;

		switch (op) {
		case T_EQ:
			if (c != floor(c) || c < -TWO63 || c >= TWO63) {
				r->empty = 1;
			} else {
				ilo(r, (int64_t)c);
				ihi(r, (int64_t)c);
			}
			break;
		case T_LT:
			if (c <= -TWO63)
				r->empty = 1;
			else if (c < TWO63)
				ihi(r, (int64_t)ceil(c) - 1);
			break;
		case T_LE:
			if (c < -TWO63)
				r->empty = 1;
			else if (c < TWO63)
				ihi(r, (int64_t)floor(c));
			break;
		case T_GT:
			if (c >= TWO63)
				r->empty = 1;
			else if (c >= -TWO63)
				ilo(r, (int64_t)floor(c) + 1);
			break;
		case T_GE:
			if (c >= TWO63)
				r->empty = 1;
			else if (c > -TWO63)
				ilo(r, (int64_t)ceil(c));
			break;
		default:
			break;
		}
	} else {
		/* A float64 column: inclusive double bounds. */
		double lo = -INFINITY, hi = INFINITY;

		if (l->type == LIT_FLOAT) {
			double c = l->f;

			switch (op) {
			case T_EQ: lo = hi = c; break;
			case T_LT:
				if (c == -INFINITY)
					r->empty = 1;
				hi = nextafter(c, -INFINITY);
				break;
			case T_LE: hi = c; break;
			case T_GT:
				if (c == INFINITY)
					r->empty = 1;
				lo = nextafter(c, INFINITY);
				break;
			case T_GE: lo = c; break;
			default: break;
			}
		} else {
			int64_t c = l->i;
			double d = (double)c;
			int k = cmp_di(d, c);

			switch (op) {
			case T_EQ:
				if (k)
					r->empty = 1;
				lo = hi = d;
				break;
			case T_LT:
				hi = k >= 0 ? nextafter(d, -INFINITY) : d;
				break;
			case T_LE:
				hi = k > 0 ? nextafter(d, -INFINITY) : d;
				break;
			case T_GT:
				lo = k <= 0 ? nextafter(d, INFINITY) : d;
				break;
			case T_GE:
				lo = k < 0 ? nextafter(d, INFINITY) : d;
				break;
			default:
				break;
			}
		}
		if (lo > r->flo)
			r->flo = lo;
		if (hi < r->fhi)
			r->fhi = hi;
		if (r->flo > r->fhi)
			r->empty = 1;
	}
	if (r->ilo > r->ihi)
		r->empty = 1;
}

static struct node *range_node(struct parser *p, int col,
			       const struct range *r)
{
	enum mv_ftype t = col_type(p, col);
	struct node *n;

	if (r->empty)
		return node_const(p, 0);
	if (t == MV_INT64 && r->ilo == INT64_MIN && r->ihi == INT64_MAX)
		return node_const(p, 1);
	if (t == MV_STRING && !r->has_slo && !r->has_shi)
		return node_const(p, 1);
	if (t == MV_STRING && r->has_slo && r->has_shi && r->slo_incl &&
	    r->shi_incl && !scmp(r->slo, r->shi)) {
		if ((n = node_new(p, N_SEQ, col)))
			n->u.seq = r->slo;
		return n;
	}
	n = node_new(p, t == MV_INT64 ? N_IRANGE : t == MV_FLOAT64 ? N_FRANGE :
		     N_SRANGE, col);
	if (!n)
		return NULL;
	n->u.ir.lo = r->ilo;
	n->u.ir.hi = r->ihi;
	if (t == MV_FLOAT64) {
		n->u.fr.lo = r->flo;
		n->u.fr.hi = r->fhi;
	} else if (t == MV_STRING) {
		n->u.sr.lo = r->slo;
		n->u.sr.hi = r->shi;
		n->u.sr.has_lo = r->has_slo;
		n->u.sr.has_hi = r->has_shi;
		n->u.sr.lo_incl = r->slo_incl;
		n->u.sr.hi_incl = r->shi_incl;
	}
	return n;
}

/* A bool column (0 or 1) equal to val: x == 0, inverted for true. */
static struct node *bool_node(struct parser *p, int col, int val)
{
	struct node *n = node_new(p, N_IRANGE, col);

	if (n) {
		n->u.ir.lo = n->u.ir.hi = 0;
		n->neg = !!val;
	}
	return n;
}

static int is_cmp(enum tok t)
{
	return t == T_EQ || t == T_NE || t == T_LT || t == T_LE ||
	       t == T_GT || t == T_GE;
}

/* lit op col is col flip(op) lit. */
static enum tok flip(enum tok op)
{
	switch (op) {
	case T_LT: return T_GT;
	case T_LE: return T_GE;
	case T_GT: return T_LT;
	case T_GE: return T_LE;
	default: return op;
	}
}

/* ---- in and like ---------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_f64(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_sval(const void *a, const void *b)
{
	return scmp(*(const struct mv_filter_str *)a,
		    *(const struct mv_filter_str *)b);
}

/* col [not] in [ ... ], the current token the '['. */
static struct node *parse_in(struct parser *p, int col, int neg)
{
	enum mv_ftype t = col_type(p, col);
	struct lit *ls = NULL;
	size_t n = 0, cap = 0, k = 0;
	struct node *nd = NULL;
	char what[40];

	if (p->tok != T_LB) {
		tok_text(p, what, sizeof(what));
		perr(p, p->tpos, "expected '[' after in, got %s", what);
		return NULL;
	}
	next(p);
	while (p->tok != T_RB) {
		struct lit l;

		if (n && p->tok != T_COMMA) {
			tok_text(p, what, sizeof(what));
			perr(p, p->tpos, "expected ',' or ']' in the list, "
			     "got %s", what);
			goto out;
		}
		if (n)
			next(p);
		if (parse_lit(p, &l) < 0)
			goto out;
		if (n && (l.type == LIT_STR) != (ls[0].type == LIT_STR)) {
			perr(p, l.pos, "mixed types in the list of '%s': "
			     "%s after %s", col_name(p, col),
			     lit_name(l.type), lit_name(ls[0].type));
			goto out;
		}
		if (lit_check(p, col, &l) < 0)
			goto out;
		if (n == cap) {
			struct lit *v = realloc(ls, (cap = cap ? 2 * cap : 8) *
						sizeof(*v));
			if (!v) {
				poom(p);
				goto out;
			}
			ls = v;
		}
		ls[n++] = l;
	}
	next(p);
	if (p->failed)
		goto out;
	if (t == MV_BOOL) {
		int has[2] = { 0, 0 };

		for (size_t i = 0; i < n; i++)
			has[!!ls[i].i] = 1;
		nd = has[0] == has[1] ? node_const(p, has[0]) :
		     bool_node(p, col, has[1]);
		if (nd && neg)
			nd = node_not(p, nd);
		goto out;
	}
	if (t == MV_INT64) {
		int64_t *v = malloc((n ? n : 1) * sizeof(*v));

		if (!v || !(nd = node_new(p, N_IIN, col))) {
			free(v);
			poom(p);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			double c = ls[i].f;

			if (ls[i].type == LIT_INT)
				v[k++] = ls[i].i;
			else if (c == floor(c) && c >= -TWO63 && c < TWO63)
				v[k++] = (int64_t)c;
		}
		qsort(v, k, sizeof(*v), cmp_i64);
		nd->u.iin.v = v;
	} else if (t == MV_FLOAT64) {
		double *v = malloc((n ? n : 1) * sizeof(*v));

		if (!v || !(nd = node_new(p, N_FIN, col))) {
			free(v);
			poom(p);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (ls[i].type == LIT_FLOAT)
				v[k++] = ls[i].f;
			else if (!cmp_di((double)ls[i].i, ls[i].i))
				v[k++] = (double)ls[i].i;
		}
		qsort(v, k, sizeof(*v), cmp_f64);
		nd->u.fin.v = v;
	} else {
		struct mv_filter_str *v = malloc((n ? n : 1) * sizeof(*v));

		if (!v || !(nd = node_new(p, N_SIN, col))) {
			free(v);
			poom(p);
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			v[k++] = ls[i].s;
		qsort(v, k, sizeof(*v), cmp_sval);
		nd->u.sin.v = v;
	}
	/* Keep each value once (the three arrays share the count). */
	if (k) {
		size_t w = 1;

		for (size_t i = 1; i < k; i++) {
			int dup = t == MV_INT64 ?
				  nd->u.iin.v[i] == nd->u.iin.v[w - 1] :
				  t == MV_FLOAT64 ?
				  nd->u.fin.v[i] == nd->u.fin.v[w - 1] :
				  !scmp(nd->u.sin.v[i], nd->u.sin.v[w - 1]);

			if (dup)
				continue;
			if (t == MV_INT64)
				nd->u.iin.v[w] = nd->u.iin.v[i];
			else if (t == MV_FLOAT64)
				nd->u.fin.v[w] = nd->u.fin.v[i];
			else
				nd->u.sin.v[w] = nd->u.sin.v[i];
			w++;
		}
		k = w;
	}
	nd->u.iin.n = k;	/* the same place in the three */
	if (t == MV_FLOAT64)
		nd->u.fin.n = k;
	else if (t == MV_STRING)
		nd->u.sin.n = k;
	if (t == MV_INT64 && k > IN_LINEAR_MAX &&
	    (uint64_t)nd->u.iin.v[k - 1] - (uint64_t)nd->u.iin.v[0] <
	    IN_BITS_MAX) {
		/* A set of close values: one bit each, tested in one step. */
		nd->u.iin.lo = nd->u.iin.v[0];
		nd->u.iin.span = (uint64_t)nd->u.iin.v[k - 1] -
				 (uint64_t)nd->u.iin.lo;
		nd->u.iin.bits = calloc(nd->u.iin.span / 64 + 1, 8);
		if (!nd->u.iin.bits) {
			poom(p);
			node_free(nd);
			nd = NULL;
			goto out;
		}
		for (size_t i = 0; i < k; i++) {
			uint64_t d = (uint64_t)nd->u.iin.v[i] -
				     (uint64_t)nd->u.iin.lo;

			nd->u.iin.bits[d / 64] |= UINT64_C(1) << d % 64;
		}
	}
	if (!k) {
		node_free(nd);
		nd = node_const(p, 0);
	}
	if (nd && neg)
		nd = node_not(p, nd);
out:
	free(ls);
	return nd;
}

/*
 * The successor of a prefix: its bytes up to the last that is not 0xff,
 * that one plus 1; every string the prefix starts is below it, and at or
 * above the prefix (memcmp order, the shorter first).
 */
static void like_succ(struct node *nd)
{
	const char *l = nd->u.like.lit;
	char *t = nd->u.like.lit + nd->u.like.litlen;
	size_t j = nd->u.like.litlen;

	while (j && (unsigned char)l[j - 1] == 0xff)
		j--;
	if (!j)
		return;
	memcpy(t, l, j);
	t[j - 1] = (char)((unsigned char)t[j - 1] + 1);
	nd->u.like.succ.p = t;
	nd->u.like.succ.len = j;
}

/*
 * A like pattern: % any run of bytes, _ one character (a UTF-8 sequence),
 * backslash makes the next byte literal.  Patterns of literals and %
 * only at the ends take a fast path; the rest the general matcher.
 */
static struct node *like_node(struct parser *p, int col,
			      struct mv_filter_str pat)
{
	uint16_t *tok = malloc((pat.len ? pat.len : 1) * sizeof(*tok));
	size_t n = 0, nany = 0, none = 0, first_any = 0, last_any = 0;
	struct node *nd;

	if (!tok) {
		poom(p);
		return NULL;
	}
	for (size_t i = 0; i < pat.len; i++) {
		unsigned char c = (unsigned char)pat.p[i];

		if (c == '\\' && i + 1 < pat.len) {
			tok[n++] = (unsigned char)pat.p[++i];
		} else if (c == '%') {
			if (n && tok[n - 1] == LT_ANY)
				continue;
			if (!nany)
				first_any = n;
			last_any = n;
			nany++;
			tok[n++] = LT_ANY;
		} else if (c == '_') {
			none++;
			tok[n++] = LT_ONE;
		} else {
			tok[n++] = c;
		}
	}
	if (n == 1 && nany == 1) {
		free(tok);
		return node_const(p, 1);
	}
	nd = node_new(p, N_LIKE, col);
	if (!nd) {
		free(tok);
		return NULL;
	}
	if (!none && nany <= 2) {
		size_t a = 0, b = n;
		enum lkind k;

		if (!nany) {
			k = L_EXACT;
		} else if (nany == 1 && first_any == n - 1) {
			k = L_PREFIX;
			b = n - 1;
		} else if (nany == 1 && first_any == 0) {
			k = L_SUFFIX;
			a = 1;
		} else if (nany == 2 && first_any == 0 && last_any == n - 1) {
			k = L_CONTAINS;
			a = 1;
			b = n - 1;
		} else {
			goto general;
		}
		nd->u.like.kind = k;
		nd->u.like.lit = malloc(2 * (b - a) + 1);
		if (!nd->u.like.lit) {
			free(tok);
			node_free(nd);
			poom(p);
			return NULL;
		}
		for (size_t i = a; i < b; i++)
			nd->u.like.lit[i - a] = (char)tok[i];
		nd->u.like.litlen = b - a;
		nd->u.like.str.p = nd->u.like.lit;
		nd->u.like.str.len = b - a;
		if (k == L_PREFIX)
			like_succ(nd);
		free(tok);
		return nd;
	}
general:
	nd->u.like.kind = L_GENERAL;
	nd->u.like.tok = tok;
	nd->u.like.ntok = n;
	return nd;
}

/* ---- the grammar ---------------------------------------------------- */

static struct node *parse_or(struct parser *p);

static int find_field(struct parser *p, size_t pos, size_t len)
{
	for (int i = 0; i < p->nfields; i++)
		if (strlen(p->fields[i].name) == len &&
		    !memcmp(p->fields[i].name, p->s + pos, len)) {
			p->mask |= UINT64_C(1) << i;
			return i;
		}
	if (len == 2 && !memcmp(p->s + pos, "id", 2)) {
		p->mask |= MV_FILTER_ID;
		return -1;
	}
	perr(p, pos, "unknown field '%.*s'", (int)(len > 64 ? 64 : len),
	     p->s + pos);
	return -2;
}

static const char *op_text(enum tok op)
{
	switch (op) {
	case T_EQ: return "==";
	case T_NE: return "!=";
	case T_LT: return "<";
	case T_LE: return "<=";
	case T_GT: return ">";
	default: return ">=";
	}
}

/* A comparison starting with a literal: lit op col [op lit]. */
static struct node *parse_lit_first(struct parser *p)
{
	struct lit a, b;
	enum tok op1, op2;
	size_t op1pos, op2pos;
	struct range r;
	int col, neg = 0;
	char what[40];

	if (parse_lit(p, &a) < 0)
		return NULL;
	if (!is_cmp(p->tok)) {
		tok_text(p, what, sizeof(what));
		perr(p, p->tpos, "expected a comparison after the value, "
		     "got %s", what);
		return NULL;
	}
	op1 = p->tok;
	op1pos = p->tpos;
	next(p);
	if (p->tok != T_IDENT) {
		tok_text(p, what, sizeof(what));
		perr(p, p->tpos, "expected a field, got %s", what);
		return NULL;
	}
	if ((col = find_field(p, p->tpos, p->tlen)) < -1)
		return NULL;
	next(p);
	if (lit_check(p, col, &a) < 0)
		return NULL;
	if (col_type(p, col) == MV_BOOL) {
		if (op1 != T_EQ && op1 != T_NE) {
			perr(p, op1pos, "'%s' is bool: compare it with == or "
			     "!=", col_name(p, col));
			return NULL;
		}
		if (is_cmp(p->tok)) {
			perr(p, p->tpos, "'%s' is bool: no range",
			     col_name(p, col));
			return NULL;
		}
		return bool_node(p, col, (int)a.i ^ (op1 == T_NE));
	}
	range_init(&r);
	if (!is_cmp(p->tok)) {
		if (op1 == T_NE) {
			op1 = T_EQ;
			neg = 1;
		}
		range_add(&r, col_type(p, col), flip(op1), &a);
		if (p->failed)
			return NULL;
		return neg ? node_not(p, range_node(p, col, &r)) :
		       range_node(p, col, &r);
	}
	op2 = p->tok;
	op2pos = p->tpos;
	if (!((op1 == T_LT || op1 == T_LE) && (op2 == T_LT || op2 == T_LE)) &&
	    !((op1 == T_GT || op1 == T_GE) && (op2 == T_GT || op2 == T_GE))) {
		perr(p, op1 == T_EQ || op1 == T_NE ? op1pos : op2pos,
		     "a range is < or <= twice, or > or >= twice: not %s and %s",
		     op_text(op1), op_text(op2));
		return NULL;
	}
	next(p);
	if (parse_lit(p, &b) < 0 || lit_check(p, col, &b) < 0)
		return NULL;
	range_add(&r, col_type(p, col), flip(op1), &a);
	range_add(&r, col_type(p, col), op2, &b);
	return range_node(p, col, &r);
}

/* A predicate starting with a field. */
static struct node *parse_field_first(struct parser *p)
{
	int col = find_field(p, p->tpos, p->tlen);
	enum mv_ftype t;
	struct range r;
	struct lit l;
	enum tok op;
	char what[40];
	int neg = 0;

	if (col < -1)
		return NULL;
	t = col_type(p, col);
	next(p);
	switch (p->tok) {
	case T_NOT:
		next(p);
		if (p->tok != T_IN) {
			tok_text(p, what, sizeof(what));
			perr(p, p->tpos, "expected in after not, got %s", what);
			return NULL;
		}
		next(p);
		return parse_in(p, col, 1);
	case T_IN:
		next(p);
		return parse_in(p, col, 0);
	case T_LIKE:
		if (t != MV_STRING) {
			perr(p, p->tpos, "like needs a string field: '%s' is %s",
			     col_name(p, col), mv_ftype_name(t));
			return NULL;
		}
		next(p);
		if (p->tok != T_STR) {
			tok_text(p, what, sizeof(what));
			perr(p, p->tpos, "like needs a quoted pattern, got %s",
			     what);
			return NULL;
		}
		l.s = p->str;
		next(p);
		return p->failed ? NULL : like_node(p, col, l.s);
	default:
		break;
	}
	/* A bool field alone is a predicate: flag is flag == true. */
	if (t == MV_BOOL && !is_cmp(p->tok))
		return bool_node(p, col, 1);
	if (!is_cmp(p->tok)) {
		tok_text(p, what, sizeof(what));
		perr(p, p->tpos, "expected an operator after '%s', got %s",
		     col_name(p, col), what);
		return NULL;
	}
	op = p->tok;
	if (t == MV_BOOL && op != T_EQ && op != T_NE) {
		perr(p, p->tpos, "'%s' is bool: compare it with == or !=",
		     col_name(p, col));
		return NULL;
	}
	next(p);
	if (p->tok == T_IDENT) {
		perr(p, p->tpos, "comparing two fields is not supported");
		return NULL;
	}
	if (parse_lit(p, &l) < 0 || lit_check(p, col, &l) < 0)
		return NULL;
	if (is_cmp(p->tok)) {
		perr(p, p->tpos, "a range starts with a value: 10 < x <= 20");
		return NULL;
	}
	if (t == MV_BOOL)
		return bool_node(p, col, (int)l.i ^ (op == T_NE));
	if (op == T_NE) {
		op = T_EQ;
		neg = 1;
	}
	range_init(&r);
	range_add(&r, t, op, &l);
	return neg ? node_not(p, range_node(p, col, &r)) :
	       range_node(p, col, &r);
}

static struct node *parse_unary(struct parser *p)
{
	struct node *n;
	char what[40];

	if (p->failed)
		return NULL;
	if (p->tok == T_NOT || p->tok == T_LP) {
		int lp = p->tok == T_LP;
		size_t pos = p->tpos;

		if (++p->depth > DEPTH_MAX) {
			perr(p, p->tpos, "nested deeper than %d", DEPTH_MAX);
			return NULL;
		}
		next(p);
		n = lp ? parse_or(p) : parse_unary(p);
		p->depth--;
		if (!n)
			return NULL;
		if (!lp)
			return node_not(p, n);
		if (p->tok != T_RP) {
			tok_text(p, what, sizeof(what));
			perr(p, p->tpos, "expected ')' for the '(' at col %zu, "
			     "got %s", pos + 1, what);
			node_free(n);
			return NULL;
		}
		next(p);
		if (p->failed) {
			node_free(n);
			return NULL;
		}
		return n;
	}
	if (p->tok == T_IDENT)
		return parse_field_first(p);
	if (is_lit_start(p->tok))
		return parse_lit_first(p);
	tok_text(p, what, sizeof(what));
	perr(p, p->tpos, "expected a field, a value, not or '(', got %s",
	     what);
	return NULL;
}

static struct node *parse_and(struct parser *p)
{
	struct node *n = parse_unary(p);

	while (n && p->tok == T_AND) {
		struct node *b;

		next(p);
		if (!(b = parse_unary(p))) {
			node_free(n);
			return NULL;
		}
		n = node_join(p, N_AND, n, b);
	}
	return n;
}

static struct node *parse_or(struct parser *p)
{
	struct node *n = parse_and(p);

	while (n && p->tok == T_OR) {
		struct node *b;

		next(p);
		if (!(b = parse_and(p))) {
			node_free(n);
			return NULL;
		}
		n = node_join(p, N_OR, n, b);
	}
	return n;
}

struct mv_filter *mv_filter_parse(const char *expr,
				  const struct mv_field *fields, int nfields,
				  struct mv_err *err)
{
	struct parser p;
	struct mv_filter *f;
	struct node *root;
	char what[40];

	memset(&p, 0, sizeof(p));
	p.s = expr;
	p.len = strlen(expr);
	p.fields = fields;
	p.nfields = nfields;
	p.err = err;
	f = calloc(1, sizeof(*f));
	p.pool = malloc(p.len + 1);
	if (!f || !p.pool) {
		free(f);
		free(p.pool);
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	next(&p);
	if (p.tok == T_END && !p.failed) {
		perr(&p, p.tpos, "empty expression");
		goto fail;
	}
	root = parse_or(&p);
	if (root && p.tok != T_END && !p.failed) {
		tok_text(&p, what, sizeof(what));
		perr(&p, p.tpos, "expected and, or or the end, got %s", what);
	}
	if (p.failed || !root) {
		node_free(root);
		goto fail;
	}
	f->root = root;
	f->mask = p.mask;
	f->pool = p.pool;
	return f;
fail:
	if (!p.failed)
		mv_err_set(err, MV_EINTERNAL, "filter parse failed");
	free(p.pool);
	free(f);
	return NULL;
}

void mv_filter_free(struct mv_filter *f)
{
	if (!f)
		return;
	node_free(f->root);
	free(f->pool);
	free(f);
}

uint64_t mv_filter_fields(const struct mv_filter *f)
{
	return f->mask;
}

/* ---- evaluation ----------------------------------------------------- */

static inline int64_t ld_i64(const unsigned char *b, size_t r)
{
	int64_t v;

	memcpy(&v, b + r * 8, 8);
	return v;
}

static inline double ld_f64(const unsigned char *b, size_t r)
{
	double v;

	memcpy(&v, b + r * 8, 8);
	return v;
}

/* 64 flags of 0 or 1 as the bits of a word, flag j bit j. */
static inline uint64_t pack64(const unsigned char *t)
{
	uint64_t m = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Byte i of v (0 or 1) lands on bit 56 + i of the product. */
	for (int k = 0; k < 8; k++) {
		uint64_t v;

		memcpy(&v, t + 8 * k, 8);
		m |= (v * UINT64_C(0x0102040810204080)) >> 56 << (8 * k);
	}
#else
	for (int j = 0; j < 64; j++)
		m |= (uint64_t)t[j] << j;
#endif
	return m;
}

/*
 * Fill out[0..WORDS) with cond over rows base..base+cnt, one bit each,
 * skipping the words where care has no bit: cond (0 or 1, of row r) goes
 * to a byte array first, a loop the compiler vectorizes, then 64 bytes
 * are packed into a word.
 */
#define SCAN(cond)							\
	do {								\
		unsigned char t_[64];					\
		size_t w_;						\
		for (w_ = 0; w_ * 64 + 64 <= cnt; w_++) {		\
			size_t r0_ = base + w_ * 64;			\
			if (!care[w_]) {				\
				out[w_] = 0;				\
				continue;				\
			}						\
			for (size_t j_ = 0; j_ < 64; j_++) {		\
				size_t r = r0_ + j_;			\
				t_[j_] = (unsigned char)(cond);		\
			}						\
			out[w_] = pack64(t_);				\
		}							\
		if (w_ * 64 < cnt) {					\
			size_t r0_ = base + w_ * 64;			\
			memset(t_, 0, sizeof(t_));			\
			for (size_t j_ = 0; j_ < cnt - w_ * 64; j_++) {	\
				size_t r = r0_ + j_;			\
				t_[j_] = (unsigned char)(cond);		\
			}						\
			out[w_++] = pack64(t_);				\
		}							\
		for (; w_ < WORDS; w_++)				\
			out[w_] = 0;					\
	} while (0)

/* The same for costly conds: only the rows whose care bit is set. */
#define SCAN_SPARSE(cond)						\
	do {								\
		for (size_t w_ = 0; w_ < WORDS; w_++) {			\
			uint64_t c_ = care[w_], m_ = 0;			\
			while (c_) {					\
				int j_ = __builtin_ctzll(c_);		\
				size_t r = base + w_ * 64 + (size_t)j_;	\
				m_ |= (uint64_t)!!(cond) << j_;		\
				c_ &= c_ - 1;				\
			}						\
			out[w_] = m_;					\
		}							\
	} while (0)

static void valid_mask(uint64_t *m, size_t cnt)
{
	for (size_t w = 0; w < WORDS; w++)
		m[w] = cnt >= (w + 1) * 64 ? UINT64_MAX :
		       cnt > w * 64 ? (UINT64_C(1) << (cnt - w * 64)) - 1 : 0;
}

/*
 * in_i64, in_f64: x in the sorted set v[0..n): a scan without branches
 * for a short set, else a binary search.  One body for both types.
 */
#define DEFINE_IN(name, type)						\
static int name(const type *v, size_t n, type x)			\
{									\
	size_t lo = 0, hi = n;						\
									\
	if (n <= IN_LINEAR_MAX) {					\
		int hit = 0;						\
									\
		for (size_t i = 0; i < n; i++)				\
			hit |= v[i] == x;				\
		return hit;						\
	}								\
	while (lo < hi) {						\
		size_t mid = lo + (hi - lo) / 2;			\
									\
		if (v[mid] < x)						\
			lo = mid + 1;					\
		else							\
			hi = mid;					\
	}								\
	return lo < n && v[lo] == x;					\
}
DEFINE_IN(in_i64, int64_t)
DEFINE_IN(in_f64, double)
#undef DEFINE_IN

static inline int in_bits(const uint64_t *bits, uint64_t lo, uint64_t span,
			  int64_t x)
{
	uint64_t d = (uint64_t)x - lo;
	uint64_t in = d <= span;
	uint64_t i = d & (0 - in);	/* d, or 0: no branch to mispredict */

	return (int)(in & bits[i / 64] >> i % 64);
}

static int in_str(const struct mv_filter_str *v, size_t n,
		  struct mv_filter_str x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (scmp(v[mid], x) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !scmp(v[lo], x);
}

static int sr_match(const struct node *n, struct mv_filter_str x)
{
	if (n->u.sr.has_lo) {
		int c = scmp(x, n->u.sr.lo);

		if (c < 0 || (!c && !n->u.sr.lo_incl))
			return 0;
	}
	if (n->u.sr.has_hi) {
		int c = scmp(x, n->u.sr.hi);

		if (c > 0 || (!c && !n->u.sr.hi_incl))
			return 0;
	}
	return 1;
}

/* The bytes of one character at s (n > 0 left): a UTF-8 sequence. */
static inline size_t char_len(const unsigned char *s, size_t n)
{
	size_t k = 1;

	if (s[0] < 0xc0)
		return 1;
	while (k < n && k < 4 && (s[k] & 0xc0) == 0x80)
		k++;
	return k;
}

/*
 * The general like matcher: the classic wildcard walk that remembers the
 * last % and retries it one character further on a mismatch, so
 * O(len(s) * len(pattern)) at worst, never exponential.
 */
static int like_general(const uint16_t *t, size_t m, struct mv_filter_str x)
{
	const unsigned char *s = (const unsigned char *)x.p;
	size_t n = x.len, i = 0, j = 0, star_j = SIZE_MAX, star_i = 0;

	while (i < n) {
		if (j < m && t[j] == LT_ANY) {
			star_j = j++;
			star_i = i;
		} else if (j < m && t[j] == LT_ONE) {
			i += char_len(s + i, n - i);
			j++;
		} else if (j < m && t[j] == s[i]) {
			i++;
			j++;
		} else if (star_j != SIZE_MAX) {
			star_i += char_len(s + star_i, n - star_i);
			i = star_i;
			j = star_j + 1;
		} else {
			return 0;
		}
	}
	while (j < m && t[j] == LT_ANY)
		j++;
	return j == m;
}

/*
 * Whether needle l (k bytes) is in x: memchr for its first byte, then a
 * compare, cheaper than memmem's set-up on short values; memmem (linear
 * at worst) for long needles.
 */
static int contains(struct mv_filter_str x, const char *l, size_t k)
{
	const char *h = x.p, *p;
	size_t n = x.len;

	if (k > 16)
		return memmem(h, n, l, k) != NULL;
	if (!k)
		return 1;
	while (n >= k && (p = memchr(h, l[0], n - k + 1))) {
		if (!memcmp(p + 1, l + 1, k - 1))
			return 1;
		n -= (size_t)(p - h) + 1;
		h = p + 1;
	}
	return 0;
}

static int like_match(const struct node *n, struct mv_filter_str x)
{
	const char *l = n->u.like.lit;
	size_t k = n->u.like.litlen;

	switch (n->u.like.kind) {
	case L_EXACT:
		return x.len == k && !memcmp(x.p, l, k);
	case L_PREFIX:
		return x.len >= k && !memcmp(x.p, l, k);
	case L_SUFFIX:
		return x.len >= k && !memcmp(x.p + x.len - k, l, k);
	case L_CONTAINS:
		return contains(x, l, k);
	default:
		return like_general(n->u.like.tok, n->u.like.ntok, x);
	}
}

/*
 * Evaluate n over rows base..base+cnt into out: right on the rows whose
 * care bit is set (a subset of the first cnt), anything on the others of
 * the first cnt, clear past cnt.  An and asks its next operand only about
 * the rows still in, an or about the rows still out.
 */
static void eval_node(const struct node *n, const struct mv_filter_rows *rows,
		      size_t base, size_t cnt, const uint64_t *care,
		      uint64_t *out)
{
	const unsigned char *b = n->col < 0 ? (const unsigned char *)rows->ids :
				 n->col < MV_FIELDS_MAX ?
				 (const unsigned char *)rows->vals[n->col] :
				 NULL;
	const uint64_t *off = n->col >= 0 && n->col < MV_FIELDS_MAX ?
			      rows->off[n->col] : NULL;
	uint64_t tmp[WORDS], valid[WORDS], sub[WORDS];
	int i;

	switch (n->kind) {
	case N_CONST:
		valid_mask(out, cnt);
		if (!n->u.val)
			memset(out, 0, WORDS * sizeof(*out));
		return;
	case N_AND:
		eval_node(n->u.kids.v[0], rows, base, cnt, care, out);
		for (i = 1; i < n->u.kids.n; i++) {
			uint64_t any = 0;

			for (int w = 0; w < WORDS; w++)
				any |= sub[w] = care[w] & out[w];
			if (!any)
				return;
			eval_node(n->u.kids.v[i], rows, base, cnt, sub, tmp);
			for (int w = 0; w < WORDS; w++)
				out[w] &= tmp[w];
		}
		return;
	case N_OR:
		eval_node(n->u.kids.v[0], rows, base, cnt, care, out);
		for (i = 1; i < n->u.kids.n; i++) {
			uint64_t miss = 0;

			for (int w = 0; w < WORDS; w++)
				miss |= sub[w] = care[w] & ~out[w];
			if (!miss)
				return;
			eval_node(n->u.kids.v[i], rows, base, cnt, sub, tmp);
			for (int w = 0; w < WORDS; w++)
				out[w] |= tmp[w];
		}
		return;
	case N_NOT:
		eval_node(n->u.kids.v[0], rows, base, cnt, care, out);
		break;
	case N_IRANGE: {
		uint64_t lo = (uint64_t)n->u.ir.lo;
		uint64_t span = (uint64_t)n->u.ir.hi - lo;

		SCAN((uint64_t)ld_i64(b, r) - lo <= span);
		break;
	}
	case N_FRANGE: {
		double lo = n->u.fr.lo, hi = n->u.fr.hi;

		SCAN((int)(ld_f64(b, r) >= lo) & (int)(ld_f64(b, r) <= hi));
		break;
	}
	case N_SRANGE:
		SCAN_SPARSE(sr_match(n, mv_filter_str_at(b, off, r)));
		break;
	case N_SEQ: {
		const char *q = n->u.seq.p;
		size_t k = n->u.seq.len;

		SCAN_SPARSE(mv_filter_str_at(b, off, r).len == k &&
			    !memcmp(mv_filter_str_at(b, off, r).p, q, k));
		break;
	}
	case N_IIN:
		if (n->u.iin.bits) {
			const uint64_t *bits = n->u.iin.bits;
			uint64_t lo = (uint64_t)n->u.iin.lo;
			uint64_t span = n->u.iin.span;

			SCAN(in_bits(bits, lo, span, ld_i64(b, r)));
		} else {
			SCAN(in_i64(n->u.iin.v, n->u.iin.n, ld_i64(b, r)));
		}
		break;
	case N_FIN:
		SCAN(in_f64(n->u.fin.v, n->u.fin.n, ld_f64(b, r)));
		break;
	case N_SIN:
		SCAN_SPARSE(in_str(n->u.sin.v, n->u.sin.n,
				   mv_filter_str_at(b, off, r)));
		break;
	case N_LIKE:
		SCAN_SPARSE(like_match(n, mv_filter_str_at(b, off, r)));
		break;
	}
	if (n->neg || n->kind == N_NOT) {
		valid_mask(valid, cnt);
		for (int w = 0; w < WORDS; w++)
			out[w] ^= valid[w];
	}
}

size_t mv_filter_eval(const struct mv_filter *f,
		      const struct mv_filter_rows *rows, uint8_t *out)
{
	size_t count = 0;

	for (size_t base = 0; base < rows->n; base += CHUNK) {
		size_t cnt = rows->n - base < CHUNK ? rows->n - base : CHUNK;
		uint64_t m[WORDS], valid[WORDS];
		uint8_t *o = out + base / 8;

		valid_mask(valid, cnt);
		eval_node(f->root, rows, base, cnt, valid, m);
		for (size_t w = 0; w < WORDS; w++)
			count += (size_t)__builtin_popcountll(m[w]);
		for (size_t k = 0; k < (cnt + 7) / 8; k++)
			o[k] = (uint8_t)(m[k / 8] >> (8 * (k % 8)));
	}
	return count;
}

/* ---- bounds and gathered evaluation --------------------------------- */

/* Take set v[0..n) as b's set if it is the first or the smaller. */
static void bound_set(struct mv_filter_bound *b, const void *v, size_t n)
{
	if (!b->set || n < b->nset) {
		b->set = v;
		b->nset = n;
	}
}

/* Meet x >= v (or > v when !incl) into b's string range. */
static void bound_slo(struct mv_filter_bound *b, struct mv_filter_str v,
		      int incl)
{
	int c = b->has_slo ? scmp(v, b->slo) : 1;

	if (c > 0 || (!c && !incl)) {
		b->slo = v;
		b->slo_incl = incl;
		b->has_slo = 1;
	}
}

/* Meet x <= v (or < v when !incl) into b's string range. */
static void bound_shi(struct mv_filter_bound *b, struct mv_filter_str v,
		      int incl)
{
	int c = b->has_shi ? scmp(v, b->shi) : -1;

	if (c < 0 || (!c && !incl)) {
		b->shi = v;
		b->shi_incl = incl;
		b->has_shi = 1;
	}
}

int mv_filter_str_cmp(struct mv_filter_str a, struct mv_filter_str b)
{
	return scmp(a, b);
}

int mv_filter_str_in(const struct mv_filter_bound *b, struct mv_filter_str v)
{
	int lo = b->has_slo ? scmp(v, b->slo) : 1;
	int hi = b->has_shi ? scmp(v, b->shi) : -1;

	return (lo > 0 || (!lo && b->slo_incl)) &&
	       (hi < 0 || (!hi && b->shi_incl));
}

int mv_filter_bound_set_in(const struct mv_filter_bound *b, size_t i)
{
	if (b->kind == MV_BOUND_STR)
		return mv_filter_str_in(b,
				((const struct mv_filter_str *)b->set)[i]);
	if (b->kind == MV_BOUND_FLOAT)
		return ((const double *)b->set)[i] >= b->flo &&
		       ((const double *)b->set)[i] <= b->fhi;
	return ((const int64_t *)b->set)[i] >= b->ilo &&
	       ((const int64_t *)b->set)[i] <= b->ihi;
}

/* Meet leaf n, a predicate over b's field, into b. */
static void bound_leaf(const struct node *n, struct mv_filter_bound *b)
{
	int64_t lo = INT64_MIN, hi = INT64_MAX;

	switch (n->kind) {
	case N_IRANGE:
		if (!n->neg) {
			lo = n->u.ir.lo;
			hi = n->u.ir.hi;
		} else if (n->u.ir.lo == INT64_MIN && n->u.ir.hi < INT64_MAX) {
			lo = n->u.ir.hi + 1;	/* not (x <= hi) */
		} else if (n->u.ir.hi == INT64_MAX && n->u.ir.lo > INT64_MIN) {
			hi = n->u.ir.lo - 1;	/* not (x >= lo) */
		} else {
			return;
		}
		break;
	case N_IIN:
		if (n->neg)
			return;
		bound_set(b, n->u.iin.v, n->u.iin.n);
		break;
	case N_FRANGE:
		/* Negated, it holds NaN and both sides: nothing to say. */
		if (n->neg)
			return;
		b->kind = MV_BOUND_FLOAT;
		if (n->u.fr.lo > b->flo)
			b->flo = n->u.fr.lo;
		if (n->u.fr.hi < b->fhi)
			b->fhi = n->u.fr.hi;
		return;
	case N_FIN:
		if (n->neg)
			return;
		b->kind = MV_BOUND_FLOAT;
		bound_set(b, n->u.fin.v, n->u.fin.n);
		return;
	case N_SEQ:
	case N_SIN:
		if (n->neg)
			return;
		b->kind = MV_BOUND_STR;
		if (n->kind == N_SEQ)
			bound_set(b, &n->u.seq, 1);
		else
			bound_set(b, n->u.sin.v, n->u.sin.n);
		return;
	case N_SRANGE:
		if (n->neg)
			return;
		b->kind = MV_BOUND_STR;
		if (n->u.sr.has_lo)
			bound_slo(b, n->u.sr.lo, n->u.sr.lo_incl);
		if (n->u.sr.has_hi)
			bound_shi(b, n->u.sr.hi, n->u.sr.hi_incl);
		return;
	case N_LIKE:
		if (n->neg)
			return;
		if (n->u.like.kind == L_EXACT) {
			b->kind = MV_BOUND_STR;
			bound_set(b, &n->u.like.str, 1);
		} else if (n->u.like.kind == L_PREFIX) {
			b->kind = MV_BOUND_STR;
			bound_slo(b, n->u.like.str, 1);
			if (n->u.like.succ.p)
				bound_shi(b, n->u.like.succ, 0);
		}
		return;
	default:
		return;
	}
	b->kind = MV_BOUND_INT;
	if (lo > b->ilo)
		b->ilo = lo;
	if (hi < b->ihi)
		b->ihi = hi;
}

static int is_leaf_on(const struct node *n, int field)
{
	return n->kind != N_CONST && n->kind != N_AND && n->kind != N_OR &&
	       n->kind != N_NOT && n->col == field;
}

int mv_filter_bounds(const struct mv_filter *f, int field,
		     struct mv_filter_bound *b)
{
	const struct node *r = f->root;
	struct node *const *kids = (struct node *const *)&r;
	int nk = 1;

	memset(b, 0, sizeof(*b));
	b->kind = MV_BOUND_NONE;
	b->ilo = INT64_MIN;
	b->ihi = INT64_MAX;
	b->flo = -INFINITY;
	b->fhi = INFINITY;
	if (r->kind == N_AND) {
		kids = r->u.kids.v;
		nk = r->u.kids.n;
	}
	for (int i = 0; i < nk; i++) {
		if (kids[i]->kind == N_CONST && !kids[i]->u.val) {
			b->kind = MV_BOUND_EMPTY;
			b->set = NULL;
			b->nset = 0;
			return b->kind;
		}
		if (is_leaf_on(kids[i], field))
			bound_leaf(kids[i], b);
	}
	if (b->kind == MV_BOUND_INT && b->ilo > b->ihi)
		b->kind = MV_BOUND_EMPTY;
	if (b->kind == MV_BOUND_FLOAT && !(b->flo <= b->fhi))
		b->kind = MV_BOUND_EMPTY;
	if (b->kind == MV_BOUND_STR && b->has_slo && b->has_shi) {
		int c = scmp(b->slo, b->shi);

		if (c > 0 || (!c && !(b->slo_incl && b->shi_incl)))
			b->kind = MV_BOUND_EMPTY;
	}
	if (b->set && b->kind != MV_BOUND_EMPTY) {
		size_t in = 0;

		for (size_t i = 0; i < b->nset; i++)
			in += mv_filter_bound_set_in(b, i);
		if (!in)
			b->kind = MV_BOUND_EMPTY;
	}
	if (b->kind == MV_BOUND_EMPTY || b->kind == MV_BOUND_NONE) {
		b->set = NULL;
		b->nset = 0;
	}
	return b->kind;
}

#define SEL 64				/* candidates gathered at a time */

/* Evaluate f over the SEL-or-fewer rows sel[0..k) of rows; clear misses. */
static size_t eval_gathered(const struct mv_filter *f,
			    const struct mv_filter_rows *rows,
			    const size_t *sel, size_t k, uint8_t *bits)
{
	uint64_t g[MV_FIELDS_MAX + 1][SEL];
	struct mv_filter_rows gr;
	uint8_t out[SEL / 8];
	size_t m;

	memset(&gr, 0, sizeof(gr));
	gr.n = k;
	for (int i = 0; i < MV_FIELDS_MAX; i++) {
		if (!(f->mask >> i & 1))
			continue;
		gr.vals[i] = rows->vals[i];
		if (rows->off[i]) {
			for (size_t j = 0; j < k; j++)
				g[i][j] = rows->off[i][sel[j]];
			gr.off[i] = g[i];
		} else {
			const unsigned char *v = rows->vals[i];

			for (size_t j = 0; j < k; j++)
				memcpy(&g[i][j], v + sel[j] * 8, 8);
			gr.vals[i] = g[i];
		}
	}
	if (f->mask & MV_FILTER_ID) {
		for (size_t j = 0; j < k; j++)
			g[MV_FIELDS_MAX][j] = (uint64_t)rows->ids[sel[j]];
		gr.ids = (const int64_t *)g[MV_FIELDS_MAX];
	}
	m = mv_filter_eval(f, &gr, out);
	for (size_t j = 0; j < k; j++)
		if (!(out[j / 8] >> j % 8 & 1))
			bits[sel[j] / 8] &= (uint8_t)~(1u << sel[j] % 8);
	return m;
}

size_t mv_filter_eval_sel(const struct mv_filter *f,
			  const struct mv_filter_rows *rows, uint8_t *bits)
{
	size_t n = rows->n, nb = (n + 7) / 8, k = 0, count = 0;
	size_t sel[SEL];

	if (n % 8)
		bits[n / 8] &= (uint8_t)((1u << n % 8) - 1);
	for (size_t i = 0; i < nb; i += 8) {
		uint64_t w = mv_bits_word(bits, nb, i * 8);

		while (w) {
			sel[k++] = i * 8 + (size_t)__builtin_ctzll(w);
			w &= w - 1;
			if (k == SEL) {
				count += eval_gathered(f, rows, sel, k, bits);
				k = 0;
			}
		}
	}
	if (k)
		count += eval_gathered(f, rows, sel, k, bits);
	return count;
}
