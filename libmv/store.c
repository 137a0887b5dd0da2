/*
 * store.c - the segment store's public functions: check paths once for
 * every implementation, then dispatch through struct mv_store_ops.  No
 * storage logic lives here; see store_local.c.
 */
#include <stdlib.h>
#include <string.h>
#include "store.h"

struct mv_store {
	const struct mv_store_ops *ops;
	void *impl;
	uint64_t bytes_read;	/* atomic: get, get_range and map */
};

static void count_read(struct mv_store *s, uint64_t n)
{
	__atomic_fetch_add(&s->bytes_read, n, __ATOMIC_RELAXED);
}

uint64_t mv_store_bytes_read(struct mv_store *s)
{
	return s ? __atomic_load_n(&s->bytes_read, __ATOMIC_RELAXED) : 0;
}

struct mv_store *mv_store_new(const struct mv_store_ops *ops, void *impl,
			      struct mv_err *err)
{
	struct mv_store *s = malloc(sizeof(*s));

	if (!s) {
		ops->close(impl);
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	s->ops = ops;
	s->impl = impl;
	s->bytes_read = 0;
	return s;
}

/* 0 if the n bytes at c are an acceptable path component. */
static int comp_ok(const char *c, size_t n)
{
	if (n == 0 || (n == 1 && c[0] == '.') ||
	    (n == 2 && c[0] == '.' && c[1] == '.'))
		return 0;
	return n < strlen(MV_STORE_TMP_PREFIX) ||
	       memcmp(c, MV_STORE_TMP_PREFIX, strlen(MV_STORE_TMP_PREFIX));
}

/*
 * Check an object path, or with is_prefix a list prefix: "" or any string
 * whose complete components (those followed by '/') are acceptable.
 */
static int path_check(const char *path, int is_prefix, struct mv_err *err)
{
	const char *c, *slash;
	size_t n;

	if (!path)
		return mv_err_set(err, MV_EUSAGE, "store path is NULL");
	n = strnlen(path, MV_STORE_PATH_MAX + 1);
	if (n > MV_STORE_PATH_MAX)
		return mv_err_set(err, MV_EUSAGE, "store path '%.64s...' is "
				  "longer than %d", path, MV_STORE_PATH_MAX);
	if (is_prefix && n == 0)
		return 0;
	if (path[0] == '/')
		goto bad;
	for (c = path; ; c = slash + 1) {
		slash = strchr(c, '/');
		if (!slash)
			break;
		if (!comp_ok(c, slash - c))
			goto bad;
	}
	if (is_prefix || comp_ok(c, strlen(c)))
		return 0;
bad:
	return mv_err_set(err, MV_EUSAGE, "bad store path '%.200s'", path);
}

int mv_store_put(struct mv_store *s, const char *path,
		 const struct iovec *iov, int iovcnt, struct mv_err *err)
{
	int rc;

	if ((rc = path_check(path, 0, err)) < 0)
		return rc;
	if (iovcnt < 0 || (iovcnt && !iov))
		return mv_err_set(err, MV_EUSAGE, "bad iovec for '%s'", path);
	return s->ops->put(s->impl, path, iov, iovcnt, err);
}

struct mv_store_writer {
	struct mv_store *s;
	void *impl;
};

int mv_store_begin(struct mv_store *s, const char *path,
		   struct mv_store_writer **w, struct mv_err *err)
{
	int rc;

	*w = NULL;
	if ((rc = path_check(path, 0, err)) < 0)
		return rc;
	if (!(*w = malloc(sizeof(**w))))
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	(*w)->s = s;
	rc = s->ops->begin(s->impl, path, &(*w)->impl, err);
	if (rc < 0) {
		free(*w);
		*w = NULL;
	}
	return rc;
}

int mv_store_append(struct mv_store_writer *w, const struct iovec *iov,
		    int iovcnt, struct mv_err *err)
{
	if (iovcnt < 0 || (iovcnt && !iov))
		return mv_err_set(err, MV_EUSAGE, "bad iovec");
	return w->s->ops->append(w->s->impl, w->impl, iov, iovcnt, err);
}

int mv_store_commit(struct mv_store_writer *w, uint64_t *size,
		    struct mv_err *err)
{
	int rc = w->s->ops->commit(w->s->impl, w->impl, size, err);

	free(w);
	return rc;
}

void mv_store_abort(struct mv_store_writer *w)
{
	if (!w)
		return;
	w->s->ops->abort(w->s->impl, w->impl);
	free(w);
}

int mv_store_get(struct mv_store *s, const char *path, void **buf,
		 size_t *len, struct mv_err *err)
{
	int rc;

	*buf = NULL;
	*len = 0;
	if ((rc = path_check(path, 0, err)) < 0)
		return rc;
	rc = s->ops->get(s->impl, path, buf, len, err);
	if (rc == 0)
		count_read(s, *len);
	return rc;
}

int mv_store_get_range(struct mv_store *s, const char *path, uint64_t off,
		       size_t len, void **buf, size_t *got,
		       struct mv_err *err)
{
	int rc;

	*buf = NULL;
	*got = 0;
	if ((rc = path_check(path, 0, err)) < 0)
		return rc;
	rc = s->ops->get_range(s->impl, path, off, len, buf, got, err);
	if (rc == 0)
		count_read(s, *got);
	return rc;
}

int mv_store_map(struct mv_store *s, const char *path, const void **p,
		 size_t *len, void **handle, struct mv_err *err)
{
	int rc;

	*p = NULL;
	*len = 0;
	*handle = NULL;
	if ((rc = path_check(path, 0, err)) < 0)
		return rc;
	rc = s->ops->map(s->impl, path, p, len, handle, err);
	if (rc == 0)
		count_read(s, *len);
	return rc;
}

void mv_store_unmap(struct mv_store *s, void *handle)
{
	if (handle)
		s->ops->unmap(s->impl, handle);
}

void mv_store_map_evict(struct mv_store *s, void *handle)
{
	if (handle && s->ops->map_evict)
		s->ops->map_evict(s->impl, handle);
}

int mv_store_del(struct mv_store *s, const char *path, struct mv_err *err)
{
	int rc;

	if ((rc = path_check(path, 0, err)) < 0)
		return rc;
	return s->ops->del(s->impl, path, err);
}

int mv_store_list(struct mv_store *s, const char *prefix,
		  int (*fn)(void *arg, const char *path, uint64_t size),
		  void *arg, struct mv_err *err)
{
	int rc;

	if ((rc = path_check(prefix, 1, err)) < 0)
		return rc;
	return s->ops->list(s->impl, prefix, fn, arg, err);
}

int mv_store_clean_tmp(struct mv_store *s, struct mv_err *err)
{
	return s->ops->clean_tmp(s->impl, err);
}

int mv_store_clean_uploads(struct mv_store *s, const char *prefix,
			   struct mv_err *err)
{
	int rc;

	if (!s->ops->clean_uploads)
		return 0;
	if ((rc = path_check(prefix, 1, err)) < 0)
		return rc;
	return s->ops->clean_uploads(s->impl, prefix, err);
}

const char *mv_store_local_dir(struct mv_store *s)
{
	return s->ops->local_dir ? s->ops->local_dir(s->impl) : NULL;
}

void mv_store_close(struct mv_store *s)
{
	if (!s)
		return;
	s->ops->close(s->impl);
	free(s);
}
