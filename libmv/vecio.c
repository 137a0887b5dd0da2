/*
 * vecio.c - streaming vector readers (fvecs, bvecs, npy, text, jsonl) with
 * format sniffing, the id-list reader and the fvecs/text writers of the
 * tools.  Input is read in large chunks into one buffer and parsed in place;
 * this file knows nothing of sockets, collections or the node.
 */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "bigmem.h"
#include "vecio.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vecio.c reads and writes little-endian data in place"
#endif

#ifdef MV_VECIO_CHUNK	/* tests/fuzz: small, so that inputs cross refills */
#define CHUNK		MV_VECIO_CHUNK
#else
#define CHUNK		(4u << 20)	/* first buffer size, and read size */
#endif
#define NPY_HDR_MAX	(1u << 20)
#define TOKEN_SHOW	40		/* bytes of a bad token quoted */
#define STRING_MAX	65535		/* longest string field (PROTOCOL.md) */

/*
 * An input stream.  buf[start, end) holds the unread bytes, buf[0] is at
 * input offset off, and the search for the next '\n' resumes at scan
 * (start <= scan <= end).  The buffer grows only for a line longer than it.
 */
struct inbuf {
	int fd, own;
	int mapped;		/* buf maps the whole file (cap bytes) */
	char *name;
	char *buf;
	size_t cap, start, end, scan;
	uint64_t off, size;
	int eof;
	/*
	 * Rows already in the caller's batch: when non-zero and the input
	 * has nothing ready (a pipe that stalls), in_more returns IN_STALL
	 * so that the batch goes out now instead of waiting for more.
	 */
	const size_t *stall_rows;
};

#define IN_STALL 2

/* One scalar column of the current batch, encoded as PROTOCOL.md says. */
struct fcol {
	unsigned char *d;
	size_t len, cap;
};

struct mv_vreader {
	struct inbuf in;
	enum mv_vformat fmt;
	struct mv_vreader_opts o;
	struct mv_field fields[MV_FIELDS_MAX];
	uint32_t dim;		/* 0 until known */
	uint64_t rec;		/* lines (text, jsonl) or records consumed */
	int npy_ready;		/* npy header parsed */
	uint64_t npy_left;	/* npy rows still to read */
	int jids;		/* jsonl: -1 not known yet, 0 no "id", 1 "id" */
	float *scratch;		/* MV_DIM_MAX floats: text row of unknown dim */
	struct fcol cols[MV_FIELDS_MAX];
	int rc;			/* sticky error, with its message in err */
	struct mv_err err;
};

struct mv_idreader {
	struct inbuf in;
	uint64_t line;
	int rc;
	struct mv_err err;
};

static const char *const fmt_names[] = {
	"auto", "fvecs", "bvecs", "npy", "text", "jsonl"
};

int mv_vformat_parse(const char *s, enum mv_vformat *out)
{
	static const struct {
		const char *name;
		enum mv_vformat f;
	} tab[] = {
		{ "auto", MV_FMT_AUTO }, { "fvecs", MV_FMT_FVECS },
		{ "bvecs", MV_FMT_BVECS }, { "npy", MV_FMT_NPY },
		{ "text", MV_FMT_TEXT }, { "txt", MV_FMT_TEXT },
		{ "tsv", MV_FMT_TEXT }, { "csv", MV_FMT_TEXT },
		{ "jsonl", MV_FMT_JSONL }, { "json", MV_FMT_JSONL },
		{ "ndjson", MV_FMT_JSONL },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcasecmp(s, tab[i].name)) {
			*out = tab[i].f;
			return 0;
		}
	return -1;
}

const char *mv_vformat_name(enum mv_vformat f)
{
	return (unsigned)f <= MV_FMT_JSONL ? fmt_names[f] : "?";
}

/* The format that a file name's extension says, or MV_FMT_AUTO. */
static enum mv_vformat format_of_name(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *dot = strrchr(slash ? slash : name, '.');
	enum mv_vformat f;

	if (!dot || dot[1] == '\0' || !strcasecmp(dot + 1, "auto") ||
	    mv_vformat_parse(dot + 1, &f) < 0)
		return MV_FMT_AUTO;
	return f;
}

int mv_vbatch_init(struct mv_vbatch *b, size_t cap, uint32_t dim,
		   struct mv_err *err)
{
	memset(b, 0, sizeof(*b));
	if (cap == 0)
		cap = 1;
	b->cap = cap;
	b->dim = dim;
	b->ids = malloc(cap * sizeof(*b->ids));
	b->recs = malloc(cap * sizeof(*b->recs));
	if (dim)
		b->vecs = mv_big_malloc(cap * dim * sizeof(float));
	if (!b->ids || !b->recs || (dim && !b->vecs)) {
		mv_vbatch_release(b);
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	}
	return 0;
}

void mv_vbatch_release(struct mv_vbatch *b)
{
	if (!b)
		return;
	free(b->vecs);
	free(b->ids);
	free(b->fields);
	free(b->recs);
	memset(b, 0, sizeof(*b));
}

/* Make b hold cap rows of dim. */
static int batch_fit(struct mv_vbatch *b, uint32_t dim, struct mv_err *err)
{
	float *v;

	if (b->dim == dim && b->vecs)
		return 0;
	v = realloc(b->vecs, b->cap * dim * sizeof(float));
	if (!v)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	b->vecs = v;
	b->dim = dim;
	return 0;
}

/*
 * Input buffer.
 */

static int in_open(struct inbuf *in, int fd, const char *path,
		   struct mv_err *err)
{
	struct stat st;
	const char *name = path && *path ? path : "-";
	int rc;

	memset(in, 0, sizeof(*in));
	in->fd = fd;
	if (fd < 0 && !strcmp(name, "-")) {
		in->fd = 0;
	} else if (fd < 0) {
		in->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (in->fd < 0)
			return mv_err_sys(err, MV_ENOINPUT, "cannot open '%s'",
					  path);
		in->own = 1;
	}
	if (fstat(in->fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			rc = mv_err_sys(err, MV_ENOINPUT, "cannot open '%s'",
					name);
			goto fail;
		}
		if (S_ISREG(st.st_mode)) {
			in->size = (uint64_t)st.st_size;
			posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		}
	}
	in->name = strdup(name);
	in->buf = mv_big_malloc(CHUNK);
	if (!in->name || !in->buf) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto fail;
	}
	in->cap = CHUNK;
	return 0;
fail:
	if (in->own)
		close(in->fd);
	free(in->name);
	free(in->buf);
	memset(in, 0, sizeof(*in));
	return rc;
}

static void in_close(struct inbuf *in)
{
	if (in->own)
		close(in->fd);
	free(in->name);
	if (in->mapped)
		munmap(in->buf, in->cap);
	else
		free(in->buf);
}

/*
 * Read a regular file of binary records through a mapping of all of it
 * instead of read(2) into the buffer: one copy less on the way to the
 * batch.  What was read so far is consumed in the same place of the map.
 * Keeps the buffer when the file cannot be mapped or is small.
 */
static void in_map(struct inbuf *in)
{
	uint64_t pos = in->off + in->start;
	void *m;

	if (in->size < CHUNK || in->size > SIZE_MAX || in->mapped)
		return;
	m = mmap(NULL, (size_t)in->size, PROT_READ, MAP_PRIVATE, in->fd, 0);
	if (m == MAP_FAILED)
		return;
	madvise(m, (size_t)in->size, MADV_SEQUENTIAL);
	free(in->buf);
	in->buf = m;
	in->mapped = 1;
	in->cap = in->end = (size_t)in->size;
	in->off = 0;
	in->start = in->scan = (size_t)pos;
	in->eof = 1;
}

/*
 * Read once more after the unread bytes, first moving them to the front
 * and growing the buffer (up to max bytes) when it is full.
 */
static int in_more(struct inbuf *in, size_t max, struct mv_err *err)
{
	ssize_t n;

	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->scan = in->scan > in->start ? in->scan - in->start : 0;
		in->off += in->start;
		in->start = 0;
	}
	if (in->end == in->cap) {
		size_t ncap = in->cap * 2 < max ? in->cap * 2 : max;
		char *nb;

		if (ncap <= in->cap)
			MV_BUG("input buffer of %zu bytes is full", in->cap);
		nb = realloc(in->buf, ncap);
		if (!nb)
			return mv_err_set(err, MV_EINTERNAL, "out of memory");
		in->buf = nb;
		in->cap = ncap;
	}
	if (in->stall_rows && *in->stall_rows > 0) {
		struct pollfd pfd = { .fd = in->fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 0)
			return IN_STALL;
	}
	do
		n = read(in->fd, in->buf + in->end, in->cap - in->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return mv_err_sys(err, MV_EIO, "read '%s'", in->name);
	if (n == 0)
		in->eof = 1;
	in->end += (size_t)n;
	return 0;
}

/* Have at least want unread bytes, unless the input ends first. */
static int in_fill(struct inbuf *in, size_t want, struct mv_err *err)
{
	while (in->end - in->start < want && !in->eof) {
		int rc = in_more(in, want > CHUNK ? want : CHUNK, err);

		if (rc)
			return rc;
	}
	return 0;
}

static int at_err(struct mv_err *err, const char *name, uint64_t n,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* MV_EDATA "NAME:N: message". */
static int at_err(struct mv_err *err, const char *name, uint64_t n,
		  const char *fmt, ...)
{
	char msg[MV_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mv_err_set(err, MV_EDATA, "%s:%llu: %s", name,
			  (unsigned long long)n, msg);
}

/*
 * The next line (without its '\n') in *ls, *len: 1, 0 at the end of the
 * input, or an error.  lineno is the number of that line, for messages.
 * The line points into the buffer and is valid until the next call.
 */
static int in_line(struct inbuf *in, const char **ls, size_t *len,
		   uint64_t lineno, struct mv_err *err)
{
	for (;;) {
		char *nl = memchr(in->buf + in->scan, '\n',
				  in->end - in->scan);
		size_t have;
		int rc;

		if (nl || (in->eof && in->start < in->end)) {
			size_t stop = nl ? (size_t)(nl - in->buf) : in->end;

			*ls = in->buf + in->start;
			*len = stop - in->start;
			in->start = in->scan = nl ? stop + 1 : stop;
			if (*len > MV_VECIO_LINE_MAX)
				goto toolong;
			return 1;
		}
		if (in->eof)
			return 0;
		have = in->end - in->start;
		if (have > MV_VECIO_LINE_MAX)
			goto toolong;
		in->scan = in->end;
		rc = in_more(in, MV_VECIO_LINE_MAX + 1, err);
		if (rc)
			return rc;
	}
toolong:
	return at_err(err, in->name, lineno, "line longer than 16 MiB");
}

/*
 * Numbers.
 */

static const float p10f[] = {
	1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f,
};
static const double p10d[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* strtof on a NUL-terminated copy of the syntax-checked number [s, e). */
static void parse_slow(const char *s, const char *e, float *out)
{
	char tmp[128], *buf = tmp;
	size_t n = (size_t)(e - s);

	if (n >= sizeof(tmp) && !(buf = malloc(n + 1))) {
		*out = NAN;	/* out of memory: refused as NaN */
		return;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtof(buf, NULL);
	if (buf != tmp)
		free(buf);
}

/* "inf", "infinity" or "nan" at p (after the sign), as strtof takes them. */
static int parse_special(const char **pp, const char *p, const char *end,
			 int neg, float *out)
{
	size_t n = (size_t)(end - p);

	if (n >= 3 && !strncasecmp(p, "inf", 3)) {
		p += n >= 8 && !strncasecmp(p, "infinity", 8) ? 8 : 3;
		*out = neg ? -INFINITY : INFINITY;
	} else if (n >= 3 && !strncasecmp(p, "nan", 3)) {
		p += 3;
		*out = NAN;
	} else {
		return -1;
	}
	*pp = p;
	return 0;
}

/*
 * The decimal number at *pp: up to 19 digits go into an integer mantissa
 * m and a power of ten e.  With m <= 2^24 and |e| <= 10 both are exact
 * floats and one IEEE multiply or divide rounds correctly (Clinger's fast
 * path).  With m <= 2^53 and |e| <= 22 the double result d is correctly
 * rounded; converting it to float rounds once more, which can only go wrong
 * when d lies exactly halfway between two floats (every such midpoint is a
 * double, so the true value cannot be on the other side of one), so d is
 * used unless its 29 low mantissa bits say it is such a tie.  The rest goes
 * to strtof.
 */
static inline __attribute__((always_inline)) int
parse_float(const char **pp, const char *end, float *out)
{
	const char *s = *pp, *p = s, *d0;
	uint64_t m = 0;
	long e10 = 0, nd;
	int neg = 0;
	float f;

	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	d0 = p;
	while (p < end && IS_DIGIT(*p))
		m = m * 10 + (unsigned)(*p++ - '0');
	nd = p - d0;
	if (p < end && *p == '.') {
		const char *f0 = ++p;

		while (p < end && IS_DIGIT(*p))
			m = m * 10 + (unsigned)(*p++ - '0');
		e10 = -(long)(p - f0);
		nd += p - f0;
	}
	if (nd == 0)
		return parse_special(pp, d0, end, neg, out);
	if (p < end && (*p == 'e' || *p == 'E')) {
		const char *q = p + 1;
		int eneg = 0;
		long x = 0;

		if (q < end && (*q == '-' || *q == '+'))
			eneg = *q++ == '-';
		if (q < end && IS_DIGIT(*q)) {
			while (q < end && IS_DIGIT(*q)) {
				if (x < 100000)
					x = x * 10 + (*q - '0');
				q++;
			}
			e10 += eneg ? -x : x;
			p = q;
		}
	}
	*pp = p;
	if (nd > 19)
		goto slow;
	if (m == 0) {
		*out = neg ? -0.0f : 0.0f;
		return 0;
	}
	if (m <= (1u << 24) && e10 >= -10 && e10 <= 10) {
		f = (float)m;
		f = e10 < 0 ? f / p10f[-e10] : f * p10f[e10];
		*out = neg ? -f : f;
		return 0;
	}
	if (m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
		double d = (double)m;
		uint64_t bits;

		d = e10 < 0 ? d / p10d[-e10] : d * p10d[e10];
		memcpy(&bits, &d, sizeof(bits));
		if (d >= FLT_MIN && d <= FLT_MAX &&
		    (bits & 0x1fffffffu) != 0x10000000u) {
			f = (float)d;
			*out = neg ? -f : f;
			return 0;
		}
	}
slow:
	parse_slow(s, p, out);
	return 0;
}

int mv_parse_float(const char **p, const char *end, float *out)
{
	return parse_float(p, end, out);
}

/* An int64 at *pp (optional sign, digits); -1 if none or out of range. */
static int parse_i64(const char **pp, const char *e, int64_t *out)
{
	const char *p = *pp, *d0;
	uint64_t v = 0;
	int neg = 0;

	if (p < e && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	d0 = p;
	while (p < e && IS_DIGIT(*p)) {
		unsigned d = (unsigned)(*p++ - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (p == d0 || v > (uint64_t)INT64_MAX + neg)
		return -1;
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
		   : (int64_t)v;
	*pp = p;
	return 0;
}

/* Quote up to TOKEN_SHOW bytes of [p, p + n) for a message. */
static void quote(const char *p, size_t n, char *out, size_t cap)
{
	size_t i, k = 0;

	for (i = 0; i < n && i < TOKEN_SHOW && k + 1 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i < n && k + 4 < cap) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

#define IS_SEP(c) ((c) == ' ' || (c) == '\t' || (c) == ',')

static size_t token_len(const char *p, const char *e)
{
	const char *q = p;

	while (q < e && !IS_SEP(*q))
		q++;
	return (size_t)(q - p);
}

/*
 * The reader.
 */

static int rd_err(struct mv_vreader *r, uint64_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* MV_EDATA "FILE:N: message" into the reader's sticky error. */
static int rd_err(struct mv_vreader *r, uint64_t n, const char *fmt, ...)
{
	char msg[MV_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return at_err(&r->err, r->in.name, n, "%s", msg);
}

static int bad_token(struct mv_vreader *r, const char *what, const char *p,
		     const char *e)
{
	char q[TOKEN_SHOW + 8];

	quote(p, token_len(p, e), q, sizeof(q));
	return rd_err(r, r->rec, "%s '%s'", what, q);
}

static uint32_t rd_le32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Guess the format from the first bytes: a NUL in the first 4 (text has
 * none; a dimension of 1..65536 has two) -> fvecs, or bvecs when the bytes
 * fit that record size only; "\x93NUMPY" -> npy; '{' first non-blank ->
 * jsonl; otherwise text.  It reads no more than it needs to decide, so a
 * line typed on a terminal is taken at once.  Nothing is consumed.
 */
static int sniff(struct mv_vreader *r, enum mv_vformat *out)
{
	struct inbuf *in = &r->in;
	const char *p;
	size_t avail, i, rs;
	int32_t d;
	int rc = 0;

	for (;; rc = in_more(in, CHUNK, &r->err)) {
		if (rc)
			return rc;
		p = in->buf + in->start;
		avail = in->end - in->start;
		if (memchr(p, '\0', avail < 4 ? avail : 4)) {
			if (avail < 4 && !in->eof)
				continue;
			break;
		}
		if (avail < 6 && !in->eof &&
		    !memcmp(p, "\x93NUMPY", avail))
			continue;
		if (avail >= 6 && !memcmp(p, "\x93NUMPY", 6)) {
			*out = MV_FMT_NPY;
			return 0;
		}
		if (avail < 4 && !in->eof && !memchr(p, '\n', avail))
			continue;
		for (i = 0; i < avail && (p[i] == ' ' || p[i] == '\t' ||
					  p[i] == '\r' || p[i] == '\n'); i++)
			;
		if (i == avail && !in->eof && in->end < in->cap)
			continue;
		if (i + 4 <= avail && !memcmp(p + i, "\xef\xbb\xbf", 3))
			i += 3;
		*out = i < avail && p[i] == '{' ? MV_FMT_JSONL : MV_FMT_TEXT;
		return 0;
	}
	/* Binary: which record size do the first dimensions agree with? */
	*out = MV_FMT_FVECS;
	if (avail < 4)
		return 0;
	d = (int32_t)rd_le32(p);
	if (d < 1 || d > MV_DIM_MAX)
		return 0;
	rs = 4 + 4 * (size_t)d;
	if ((rc = in_fill(in, rs + 4, &r->err)))
		return rc;
	p = in->buf + in->start;
	avail = in->end - in->start;
	if (avail == rs || (avail >= rs + 4 && rd_le32(p + rs) == (uint32_t)d))
		return 0;
	rs = 4 + (size_t)d;
	if (avail == rs || (avail >= rs + 4 && rd_le32(p + rs) == (uint32_t)d))
		*out = MV_FMT_BVECS;
	return 0;
}

static struct mv_vreader *vr_open(int fd, const char *path,
				  const struct mv_vreader_opts *o,
				  struct mv_err *err)
{
	struct mv_vreader *r = calloc(1, sizeof(*r));
	enum mv_vformat f;

	if (!r) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	if (o)
		r->o = *o;
	if (r->o.nfields < 0 || r->o.nfields > MV_FIELDS_MAX ||
	    (r->o.nfields && !r->o.fields) || r->o.dim > MV_DIM_MAX) {
		mv_err_set(err, MV_EUSAGE, "bad vector reader options");
		free(r);
		return NULL;
	}
	if (r->o.nfields)
		memcpy(r->fields, r->o.fields,
		       (size_t)r->o.nfields * sizeof(r->fields[0]));
	r->o.fields = r->fields;
	r->dim = r->o.dim;
	r->jids = -1;
	if (in_open(&r->in, fd, path, err) < 0) {
		free(r);
		return NULL;
	}
	f = r->o.format;
	if (f == MV_FMT_AUTO)
		f = format_of_name(r->in.name);
	if (f == MV_FMT_AUTO && sniff(r, &f) < 0) {
		mv_err_set(err, r->err.code, "%s", r->err.msg);
		mv_vreader_close(r);
		return NULL;
	}
	r->fmt = f;
	if (f == MV_FMT_FVECS || f == MV_FMT_BVECS || f == MV_FMT_NPY)
		in_map(&r->in);
	if (f == MV_FMT_TEXT && !r->dim &&
	    !(r->scratch = malloc(MV_DIM_MAX * sizeof(float)))) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		mv_vreader_close(r);
		return NULL;
	}
	return r;
}

struct mv_vreader *mv_vreader_open(const char *path,
				   const struct mv_vreader_opts *o,
				   struct mv_err *err)
{
	return vr_open(-1, path, o, err);
}

struct mv_vreader *mv_vreader_fdopen(int fd, const char *name,
				     const struct mv_vreader_opts *o,
				     struct mv_err *err)
{
	if (fd < 0) {
		mv_err_set(err, MV_EUSAGE, "bad file descriptor %d", fd);
		return NULL;
	}
	return vr_open(fd, name, o, err);
}

void mv_vreader_close(struct mv_vreader *r)
{
	if (!r)
		return;
	in_close(&r->in);
	free(r->scratch);
	for (int i = 0; i < MV_FIELDS_MAX; i++)
		free(r->cols[i].d);
	free(r);
}

uint64_t mv_vreader_pos(const struct mv_vreader *r)
{
	return r->in.off + r->in.start;
}

uint64_t mv_vreader_size(const struct mv_vreader *r)
{
	return r->in.size;
}

enum mv_vformat mv_vreader_format(const struct mv_vreader *r)
{
	return r->fmt;
}

uint32_t mv_vreader_dim(const struct mv_vreader *r)
{
	return r->dim;
}

/* The first row fixes the dimension (opts->dim was 0). */
static int take_dim(struct mv_vreader *r, struct mv_vbatch *b, uint64_t n,
		    uint64_t d)
{
	if (d > MV_DIM_MAX)
		return rd_err(r, n, "dimension %llu, at most %d",
			      (unsigned long long)d, MV_DIM_MAX);
	r->dim = (uint32_t)d;
	return batch_fit(b, r->dim, &r->err);
}

static int finite_all(const float *v, size_t n)
{
	uint32_t bits;

	for (size_t i = 0; i < n; i++) {
		memcpy(&bits, &v[i], sizeof(bits));
		if ((bits & 0x7f800000u) == 0x7f800000u)
			return 0;
	}
	return 1;
}

/* fvecs and bvecs: each record is an int32 dimension, then the values. */
static int read_vecs(struct mv_vreader *r, struct mv_vbatch *b)
{
	struct inbuf *in = &r->in;
	size_t esz = r->fmt == MV_FMT_FVECS ? 4 : 1;
	int rc;

	while (b->n < b->cap) {
		uint64_t rn = r->rec + 1;
		const char *src;
		size_t rs;
		int32_t d;
		float *row;

		if ((rc = in_fill(in, 4, &r->err)))
			return rc;
		if (in->end == in->start)
			break;
		if (in->end - in->start < 4)
			return rd_err(r, rn, "truncated record");
		d = (int32_t)rd_le32(in->buf + in->start);
		if (d <= 0)
			return rd_err(r, rn, "bad dimension %d", (int)d);
		if (!r->dim) {
			if ((rc = take_dim(r, b, rn, (uint64_t)d)))
				return rc;
		} else if ((uint32_t)d != r->dim) {
			return rd_err(r, rn, "dimension %d, expected %u",
				      (int)d, r->dim);
		}
		rs = 4 + (size_t)d * esz;
		if ((rc = in_fill(in, rs, &r->err)))
			return rc;
		if (in->end - in->start < rs)
			return rd_err(r, rn, "truncated record");
		src = in->buf + in->start + 4;
		row = b->vecs + b->n * r->dim;
		if (esz == 4) {
			memcpy(row, src, (size_t)d * 4);
			if (!finite_all(row, (size_t)d))
				return rd_err(r, rn, "NaN or Inf");
		} else {
			for (int32_t i = 0; i < d; i++)
				row[i] = (float)(unsigned char)src[i];
		}
		in->start += rs;
		r->rec = rn;
		b->recs[b->n++] = rn;
	}
	return 0;
}

/* The value of key in a numpy header dict, or NULL. */
static const char *npy_key(const char *h, const char *key)
{
	const char *p = h;
	size_t n = strlen(key);

	while ((p = strstr(p, key))) {
		const char *q = p + n;

		if (p > h && (p[-1] == '\'' || p[-1] == '"') && *q == p[-1]) {
			q++;
			while (*q == ' ')
				q++;
			if (*q == ':') {
				q++;
				while (*q == ' ')
					q++;
				return q;
			}
		}
		p = q;
	}
	return NULL;
}

static int npy_bad(struct mv_vreader *r, const char *what)
{
	return mv_err_set(&r->err, MV_EDATA, "%s: %s", r->in.name, what);
}

/* Parse the npy header: '<f4', C order, shape (rows, dim). */
static int npy_header(struct mv_vreader *r, struct mv_vbatch *b)
{
	struct inbuf *in = &r->in;
	const unsigned char *p;
	unsigned long long shape[2] = { 0, 0 };
	const char *v;
	char *h = NULL, *end;
	size_t hs, hl;
	int rc, nd = 0;

	if ((rc = in_fill(in, 12, &r->err)))
		return rc;
	p = (const unsigned char *)in->buf + in->start;
	if (in->end - in->start < 10 || memcmp(p, "\x93NUMPY", 6))
		return npy_bad(r, "not an npy file");
	if (p[6] == 1) {
		hs = 10;
		hl = p[8] | (size_t)p[9] << 8;
	} else if (p[6] == 2 || p[6] == 3) {
		hs = 12;
		hl = rd_le32((const char *)p + 8);
	} else {
		return mv_err_set(&r->err, MV_EDATA,
				  "%s: npy version %d.%d is not supported",
				  in->name, p[6], p[7]);
	}
	if (hl > NPY_HDR_MAX)
		return npy_bad(r, "npy header too long");
	if ((rc = in_fill(in, hs + hl, &r->err)))
		return rc;
	if (in->end - in->start < hs + hl)
		return npy_bad(r, "truncated npy header");
	if (!(h = strndup(in->buf + in->start + hs, hl)))
		return mv_err_set(&r->err, MV_EINTERNAL, "out of memory");

	rc = MV_EDATA;
	if (!(v = npy_key(h, "descr")) || (*v != '\'' && *v != '"')) {
		npy_bad(r, "bad npy header: no 'descr'");
		goto out;
	}
	if (strncmp(v + 1, "<f4", 3) || v[4] != v[0]) {
		char q[TOKEN_SHOW + 8];
		const char *e = strchr(v + 1, v[0]);

		quote(v + 1, e ? (size_t)(e - v - 1) : strlen(v + 1), q,
		      sizeof(q));
		mv_err_set(&r->err, MV_EDATA, "%s: npy dtype '%s' is not "
			   "supported, want '<f4'", in->name, q);
		goto out;
	}
	if (!(v = npy_key(h, "fortran_order")) ||
	    (strncmp(v, "False", 5) && strncmp(v, "True", 4))) {
		npy_bad(r, "bad npy header: no 'fortran_order'");
		goto out;
	}
	if (*v == 'T') {
		npy_bad(r, "npy arrays in fortran order are not supported");
		goto out;
	}
	if (!(v = npy_key(h, "shape")) || *v++ != '(') {
		npy_bad(r, "bad npy header: no 'shape'");
		goto out;
	}
	for (;;) {
		while (*v == ' ')
			v++;
		if (*v == ')')
			break;
		if (!IS_DIGIT(*v)) {
			npy_bad(r, "bad npy header: bad 'shape'");
			goto out;
		}
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (errno) {
			npy_bad(r, "bad npy header: bad 'shape'");
			goto out;
		}
		if (nd < 2)
			shape[nd] = x;
		nd++;
		v = end;
		while (*v == ' ')
			v++;
		if (*v == ',')
			v++;
	}
	if (nd != 2) {
		mv_err_set(&r->err, MV_EDATA, "%s: npy array of %d "
			   "dimensions, want 2 (rows, dim)", in->name, nd);
		goto out;
	}
	in->start += hs + hl;
	in->scan = in->start;
	r->npy_left = shape[0];
	r->npy_ready = 1;
	rc = 0;
	if (shape[0] == 0)
		goto out;
	if (shape[1] == 0 || shape[1] > INT32_MAX)
		rc = rd_err(r, 1, "bad dimension %llu", shape[1]);
	else if (!r->dim)
		rc = take_dim(r, b, 1, shape[1]);
	else if (shape[1] != r->dim)
		rc = rd_err(r, 1, "dimension %llu, expected %u", shape[1],
			    r->dim);
out:
	free(h);
	return rc;
}

/* npy rows: rows x dim float32, whole rows copied at once. */
static int read_npy(struct mv_vreader *r, struct mv_vbatch *b)
{
	struct inbuf *in = &r->in;
	size_t rs;
	int rc;

	if (!r->npy_ready && (rc = npy_header(r, b)))
		return rc;
	rs = (size_t)r->dim * 4;
	while (b->n < b->cap && r->npy_left) {
		size_t k, avail;
		float *row = b->vecs + b->n * r->dim;

		if ((rc = in_fill(in, rs, &r->err)))
			return rc;
		avail = (in->end - in->start) / rs;
		if (avail == 0)
			return rd_err(r, r->rec + 1, "truncated record");
		k = b->cap - b->n;
		if (k > avail)
			k = avail;
		if (k > r->npy_left)
			k = (size_t)r->npy_left;
		memcpy(row, in->buf + in->start, k * rs);
		for (size_t i = 0; i < k; i++) {
			if (!finite_all(row + i * r->dim, r->dim))
				return rd_err(r, r->rec + i + 1, "NaN or Inf");
			b->recs[b->n + i] = r->rec + i + 1;
		}
		in->start += k * rs;
		r->rec += k;
		r->npy_left -= k;
		b->n += k;
	}
	if (!r->npy_left && b->n < b->cap) {
		if ((rc = in_fill(in, 1, &r->err)))
			return rc;
		if (in->end > in->start)
			return mv_err_set(&r->err, MV_EDATA,
					  "%s: trailing data after %llu rows",
					  in->name,
					  (unsigned long long)r->rec);
	}
	return 0;
}

/* Past spaces and tabs, then at most one comma and the blanks after it. */
static inline const char *skip_sep(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p < e && *p == ',') {
		p++;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
	}
	return p;
}

/* One text line [p, e): 1 row added, 0 blank or comment, or an error. */
static int text_row(struct mv_vreader *r, const char *p, const char *e,
		    struct mv_vbatch *b)
{
	uint32_t dim = r->dim;
	size_t k = 0, lim = dim ? dim : MV_DIM_MAX;
	float *row = dim ? b->vecs + b->n * dim : r->scratch;
	int64_t id = 0;
	int rc;

	if (r->rec == 1 && e - p >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p == e || *p == '#')
		return 0;
	if (r->o.ids_first) {
		const char *q = p;

		if (parse_i64(&q, e, &id) < 0 || (q < e && !IS_SEP(*q)))
			return bad_token(r, "bad id", p, e);
		if (id == INT64_MIN)
			return rd_err(r, r->rec, "id %" PRId64 " is reserved",
				      id);
		p = skip_sep(q, e);
	}
	while (p < e) {
		const char *q = p;
		float f;

		if (*p == ',')
			return rd_err(r, r->rec, "empty value");
		if (parse_float(&q, e, &f) < 0 || (q < e && !IS_SEP(*q)))
			return bad_token(r, "not a number:", p, e);
		if (!isfinite(f))
			return rd_err(r, r->rec, "NaN or Inf");
		if (k < lim)
			row[k] = f;
		k++;
		p = skip_sep(q, e);
	}
	if (k == 0)
		return rd_err(r, r->rec, "no values after the id");
	if (!dim) {
		if ((rc = take_dim(r, b, r->rec, k)))
			return rc;
		memcpy(b->vecs + b->n * k, r->scratch, k * sizeof(float));
	} else if (k != dim) {
		return rd_err(r, r->rec, "dimension %zu, expected %u", k, dim);
	}
	b->ids[b->n] = id;
	b->recs[b->n++] = r->rec;
	return 1;
}

static int col_put(struct mv_vreader *r, struct fcol *c, const void *v,
		   size_t n)
{
	if (c->len + n > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 4096;
		unsigned char *d;

		while (ncap < c->len + n)
			ncap *= 2;
		if (!(d = realloc(c->d, ncap)))
			return mv_err_set(&r->err, MV_EINTERNAL,
					  "out of memory");
		c->d = d;
		c->cap = ncap;
	}
	memcpy(c->d + c->len, v, n);
	c->len += n;
	return 0;
}

/* Python's json writes NaN, Infinity and -Infinity, which JSON lacks. */
static int has_nonfinite(const char *p, const char *e)
{
	size_t n = p && e > p ? (size_t)(e - p) : 0;

	return n && (memmem(p, n, "NaN", 3) || memmem(p, n, "Infinity", 8));
}

/* Append row's scalar fields from object o to the columns. */
static int jsonl_fields(struct mv_vreader *r, json_t *o)
{
	for (int i = 0; i < r->o.nfields; i++) {
		const struct mv_field *f = &r->fields[i];
		struct fcol *c = &r->cols[i];
		json_t *x = json_object_get(o, f->name);
		int64_t iv = 0;
		double dv = 0;
		uint32_t len = 0;
		int rc;

		if (json_is_null(x))
			x = NULL;
		switch (f->type) {
		case MV_INT64:
			if (x && !json_is_integer(x))
				return rd_err(r, r->rec, "field '%s' is not "
					      "an integer", f->name);
			if (x)
				iv = json_integer_value(x);
			rc = col_put(r, c, &iv, 8);
			break;
		case MV_FLOAT64:
			if (x && !json_is_number(x))
				return rd_err(r, r->rec, "field '%s' is not "
					      "a number", f->name);
			if (x)
				dv = json_number_value(x);
			rc = col_put(r, c, &dv, 8);
			break;
		case MV_BOOL:
			if (x && !json_is_boolean(x))
				return rd_err(r, r->rec, "field '%s' is not "
					      "true or false", f->name);
			iv = json_is_true(x);
			rc = col_put(r, c, &iv, 8);
			break;
		case MV_STRING:
			if (x && !json_is_string(x))
				return rd_err(r, r->rec, "field '%s' is not "
					      "a string", f->name);
			if (x && json_string_length(x) > STRING_MAX)
				return rd_err(r, r->rec, "field '%s' longer "
					      "than %d bytes", f->name,
					      STRING_MAX);
			if (x)
				len = (uint32_t)json_string_length(x);
			rc = col_put(r, c, &len, 4);
			if (!rc && len)
				rc = col_put(r, c, json_string_value(x), len);
			break;
		default:
			rc = mv_err_set(&r->err, MV_EUSAGE, "field '%s' has "
					"an unknown type", f->name);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* One jsonl line [p, e): 1 row added, 0 blank, or an error. */
static int jsonl_row(struct mv_vreader *r, const char *p, const char *e,
		     struct mv_vbatch *b)
{
	json_error_t je;
	json_t *o, *v, *id;
	float *row;
	size_t k;
	int rc;

	if (r->rec == 1 && e - p >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p == e || *p == '#')
		return 0;
	if (!(o = json_loadb(p, (size_t)(e - p), 0, &je))) {
		if (has_nonfinite(p, e))
			return rd_err(r, r->rec, "NaN or Inf");
		return rd_err(r, r->rec, "bad json: %s", je.text);
	}
	if (!json_is_object(o)) {
		rc = rd_err(r, r->rec, "not a json object");
		goto out;
	}
	id = json_object_get(o, "id");
	if (r->jids < 0)
		r->jids = id != NULL;
	if (!id != !r->jids) {
		rc = rd_err(r, r->rec, "%s", id ?
			    "'id' given, but earlier lines have none" :
			    "no 'id', but earlier lines have one");
		goto out;
	}
	if (id && !json_is_integer(id)) {
		char q[TOKEN_SHOW + 8];
		char *s = json_dumps(id, JSON_ENCODE_ANY);

		quote(s ? s : "?", s ? strlen(s) : 1, q, sizeof(q));
		free(s);
		rc = rd_err(r, r->rec, "bad id '%s'", q);
		goto out;
	}
	if (id && json_integer_value(id) == INT64_MIN) {
		rc = rd_err(r, r->rec, "id %" PRId64 " is reserved",
			    (int64_t)INT64_MIN);
		goto out;
	}
	v = json_object_get(o, "vector");
	if (!json_is_array(v)) {
		rc = rd_err(r, r->rec, "no 'vector' array");
		goto out;
	}
	k = json_array_size(v);
	if (k == 0) {
		rc = rd_err(r, r->rec, "empty 'vector'");
		goto out;
	}
	if (!r->dim) {
		if ((rc = take_dim(r, b, r->rec, k)))
			goto out;
	} else if (k != r->dim) {
		rc = rd_err(r, r->rec, "dimension %zu, expected %u", k,
			    r->dim);
		goto out;
	}
	row = b->vecs + b->n * r->dim;
	for (size_t i = 0; i < k; i++) {
		json_t *x = json_array_get(v, i);

		if (!json_is_number(x)) {
			rc = rd_err(r, r->rec, "not a number in 'vector'");
			goto out;
		}
		row[i] = (float)json_number_value(x);
		if (!isfinite(row[i])) {
			rc = rd_err(r, r->rec, "NaN or Inf");
			goto out;
		}
	}
	if ((rc = jsonl_fields(r, o)))
		goto out;
	b->ids[b->n] = id ? (int64_t)json_integer_value(id) : 0;
	b->recs[b->n++] = r->rec;
	rc = 1;
out:
	json_decref(o);
	return rc;
}

/* Text and jsonl: a line at a time, straight from the buffer. */
static int read_lines(struct mv_vreader *r, struct mv_vbatch *b)
{
	int (*row)(struct mv_vreader *, const char *, const char *,
		   struct mv_vbatch *);
	const char *ls;
	size_t len;
	int rc;

	row = r->fmt == MV_FMT_JSONL ? jsonl_row : text_row;
	while (b->n < b->cap) {
		rc = in_line(&r->in, &ls, &len, r->rec + 1, &r->err);
		if (rc <= 0 || rc == IN_STALL)
			return rc == IN_STALL ? 0 : rc;
		r->rec++;
		if (len && ls[len - 1] == '\r')
			len--;
		if ((rc = row(r, ls, ls + len, b)) < 0)
			return rc;
	}
	return 0;
}

/* Concatenate the columns into b->fields, the block of PROTOCOL.md. */
static int fields_pack(struct mv_vreader *r, struct mv_vbatch *b)
{
	size_t total = 0, off = 0;
	int i;

	for (i = 0; i < r->o.nfields; i++)
		total += r->cols[i].len;
	if (total > b->fields_cap) {
		size_t ncap = b->fields_cap * 2 > total ? b->fields_cap * 2
							: total;
		unsigned char *d = realloc(b->fields, ncap);

		if (!d)
			return mv_err_set(&r->err, MV_EINTERNAL,
					  "out of memory");
		b->fields = d;
		b->fields_cap = ncap;
	}
	for (i = 0; i < r->o.nfields; i++) {
		if (r->cols[i].len)
			memcpy(b->fields + off, r->cols[i].d, r->cols[i].len);
		off += r->cols[i].len;
	}
	b->fields_len = total;
	b->has_fields = 1;
	return 0;
}

long mv_vreader_read(struct mv_vreader *r, struct mv_vbatch *b,
		     struct mv_err *err)
{
	int rc = 0;

	if (r->rc)
		goto fail;
	b->n = 0;
	b->has_ids = 0;
	b->has_fields = 0;
	b->fields_len = 0;
	for (int i = 0; i < r->o.nfields; i++)
		r->cols[i].len = 0;
	if (r->dim && (rc = batch_fit(b, r->dim, &r->err)))
		goto fail;
	r->in.stall_rows = &b->n;
	switch (r->fmt) {
	case MV_FMT_FVECS:
	case MV_FMT_BVECS:
		rc = read_vecs(r, b);
		break;
	case MV_FMT_NPY:
		rc = read_npy(r, b);
		break;
	case MV_FMT_TEXT:
	case MV_FMT_JSONL:
		rc = read_lines(r, b);
		break;
	default:
		rc = mv_err_set(&r->err, MV_EUSAGE, "no input format");
	}
	r->in.stall_rows = NULL;
	if (rc < 0)
		goto fail;
	b->rec0 = b->n ? b->recs[0] : r->rec + 1;
	b->has_ids = (r->fmt == MV_FMT_TEXT && r->o.ids_first) ||
		     (r->fmt == MV_FMT_JSONL && r->jids == 1);
	if (r->fmt == MV_FMT_JSONL && r->o.nfields && b->n &&
	    (rc = fields_pack(r, b)) < 0)
		goto fail;
	return (long)b->n;
fail:
	if (!r->rc)
		r->rc = rc < 0 ? rc : MV_EINTERNAL;
	b->n = 0;
	mv_err_set(err, r->rc, "%s", r->err.msg);
	return r->rc;
}

/*
 * Id lists.
 */

struct mv_idreader *mv_idreader_open(const char *path, struct mv_err *err)
{
	struct mv_idreader *r = calloc(1, sizeof(*r));

	if (!r) {
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	if (in_open(&r->in, -1, path, err) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

long mv_idreader_read(struct mv_idreader *r, int64_t *ids, size_t max,
		      struct mv_err *err)
{
	return mv_idreader_read_lines(r, ids, NULL, max, err);
}

long mv_idreader_read_lines(struct mv_idreader *r, int64_t *ids,
			    uint64_t *lines, size_t max, struct mv_err *err)
{
	size_t n = 0;
	int rc;

	if (r->rc)
		goto fail;
	while (n < max) {
		const char *ls, *p, *e, *q;
		size_t len;

		rc = in_line(&r->in, &ls, &len, r->line + 1, &r->err);
		if (rc == 0)
			break;
		if (rc < 0) {
			r->rc = rc;
			goto fail;
		}
		r->line++;
		p = ls;
		e = ls + len;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' ||
				 e[-1] == '\r'))
			e--;
		if (p == e || *p == '#')
			continue;
		q = p;
		if (parse_i64(&q, e, &ids[n]) < 0 || q != e) {
			char t[TOKEN_SHOW + 8];

			quote(p, (size_t)(e - p), t, sizeof(t));
			r->rc = at_err(&r->err, r->in.name, r->line,
				       "bad id '%s'", t);
			goto fail;
		}
		if (ids[n] == INT64_MIN) {
			r->rc = at_err(&r->err, r->in.name, r->line,
				       "id %" PRId64 " is reserved", ids[n]);
			goto fail;
		}
		if (lines)
			lines[n] = r->line;
		n++;
	}
	return (long)n;
fail:
	mv_err_set(err, r->rc, "%s", r->err.msg);
	return r->rc;
}

void mv_idreader_close(struct mv_idreader *r)
{
	if (!r)
		return;
	in_close(&r->in);
	free(r);
}

/*
 * Writers.
 */

int mv_write_fvecs(FILE *f, const float *v, uint32_t dim)
{
	int32_t d = (int32_t)dim;

	if (fwrite(&d, 4, 1, f) != 1 ||
	    (dim && fwrite(v, sizeof(float), dim, f) != dim))
		return MV_EIO;
	return 0;
}

int mv_write_text(FILE *f, const float *v, uint32_t dim, char sep)
{
	char buf[4096];
	size_t k = 0;

	for (uint32_t i = 0; i < dim; i++) {
		if (k > sizeof(buf) - 32) {
			if (fwrite(buf, 1, k, f) != k)
				return MV_EIO;
			k = 0;
		}
		if (i)
			buf[k++] = sep;
		k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%.9g",
				      (double)v[i]);
	}
	if (k && fwrite(buf, 1, k, f) != k)
		return MV_EIO;
	return 0;
}
