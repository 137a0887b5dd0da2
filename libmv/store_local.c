/*
 * store_local.c - the segment store in a local directory: an object is the
 * file dir/path, replaced only by renaming a fully written and fsync'ed
 * temporary over it.  It serves the embedded node and any shared
 * filesystem; S3 lives in its own file.  Objects are 0600 and the
 * directories it makes 0700: the data is its owner's alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store.h"

#define TMP_LEN (sizeof(MV_STORE_TMP_PREFIX) - 1)
#define REL_MAX (MV_STORE_PATH_MAX + 64)	/* a path or its temporary */
#define PUT_TRIES 100
#define DIRECT_FROM (1u << 20)	/* objects this large bypass the page cache */
#define DIO_ALIGN 4096
#define BOUNCE (1u << 20)

struct store_local {
	char *dir;
	int dirfd;
	/* Puts hold it shared, clean_tmp exclusive: it spares live temps. */
	pthread_rwlock_t tmp_lock;
	unsigned long seq;	/* atomic; names temporaries */
	unsigned long writers;	/* atomic; open writers, puts included */
};

struct map_handle {
	void *addr;
	size_t len;
};

/*
 * fsync the directory rel ("" for the root).  One that a concurrent del
 * removed is fine: what it held is gone anyway.
 */
static int fsync_dir(struct store_local *sl, const char *rel,
		     struct mv_err *err)
{
	int fd = sl->dirfd, rc = 0;

	if (*rel) {
		fd = openat(sl->dirfd, rel, O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			return 0;
		if (fd < 0)
			return mv_err_sys(err, MV_EIO, "open '%s/%s'",
					  sl->dir, rel);
	}
	if (fsync(fd) < 0)
		rc = mv_err_sys(err, MV_EIO, "fsync '%s%s%s'", sl->dir,
				*rel ? "/" : "", rel);
	if (*rel)
		close(fd);
	return rc;
}

/*
 * Create the directories of rel (a directory path) that are missing.
 * Returns 0, MV_E*, or 1 when a concurrent del removed one on the way.
 */
static int mkdirs(struct store_local *sl, char *rel, struct mv_err *err)
{
	for (char *s = rel; ; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdirat(sl->dirfd, rel, 0700) == 0) {
			/* Make the new entry durable in its parent. */
			char *slash = strrchr(rel, '/');
			int rc;

			if (slash)
				*slash = '\0';
			rc = fsync_dir(sl, slash ? rel : "", err);
			if (slash)
				*slash = '/';
			if (rc < 0) {
				*s = c;
				return rc;
			}
		} else if (errno == ENOENT) {
			*s = c;
			return 1;
		} else if (errno != EEXIST) {
			mv_err_sys(err, MV_EIO, "mkdir '%s/%s'", sl->dir, rel);
			*s = c;
			return MV_EIO;
		}
		*s = c;
		if (!c)
			return 0;
	}
}

/*
 * A put in progress: a temporary in the object's directory, written in
 * order, then fsync'ed and renamed over the object.  Large objects are
 * written with direct I/O: fresh page-cache pages cost more than the disk
 * on some machines (a VM that hands free memory back to its host), and
 * what mv writes big (a flush's vectors) it keeps in memory anyway.  A
 * buffer whose address matches its file offset modulo DIO_ALIGN goes
 * straight from memory to the disk; anything else passes through an
 * aligned bounce buffer, whose last block is padded and the file then cut
 * to size.  Where the filesystem refuses direct I/O (EINVAL on the first
 * write) the writer falls back to the page cache.
 */
struct lwriter {
	struct store_local *sl;
	int fd, direct;
	int written;		/* a direct write went through */
	unsigned char *buf;	/* direct: bounce, BOUNCE bytes */
	size_t blen;		/* direct: bytes held in buf */
	uint64_t off;		/* direct: file offset of buf[0]; else end */
	uint64_t size;		/* bytes appended */
	char path[MV_STORE_PATH_MAX + 1];
	char parent[MV_STORE_PATH_MAX + 1];
	char tmp[REL_MAX];
};

static void lw_free(struct lwriter *w, int unlink_tmp)
{
	if (w->fd >= 0)
		close(w->fd);
	if (unlink_tmp && w->tmp[0])
		unlinkat(w->sl->dirfd, w->tmp, 0);
	__atomic_fetch_sub(&w->sl->writers, 1, __ATOMIC_RELAXED);
	free(w->buf);
	free(w);
}

/* Create the temporary for path; direct asks for direct I/O. */
static int lw_open(struct store_local *sl, const char *path, int direct,
		   struct lwriter **out, struct mv_err *err)
{
	struct lwriter *w = calloc(1, sizeof(*w));
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	int tries = 0, rc;

	*out = NULL;
	if (!w)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	w->sl = sl;
	w->fd = -1;
	__atomic_fetch_add(&sl->writers, 1, __ATOMIC_RELAXED);
	snprintf(w->path, sizeof(w->path), "%s", path);
	memcpy(w->parent, path, plen);
	w->parent[plen] = '\0';
	for (;;) {
		unsigned long seq = __atomic_fetch_add(&sl->seq, 1,
						       __ATOMIC_RELAXED);

		rc = plen ? mkdirs(sl, w->parent, err) : 0;
		if (rc < 0)
			goto fail;
		if (rc > 0 && ++tries < PUT_TRIES)
			continue;
		snprintf(w->tmp, sizeof(w->tmp), "%s%s%s%ld-%lu", w->parent,
			 plen ? "/" : "", MV_STORE_TMP_PREFIX,
			 (long)getpid(), seq);
		w->fd = openat(sl->dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL |
			       O_CLOEXEC, 0600);
		if (w->fd >= 0)
			break;
		/* A stale name, or a del that just removed the parent. */
		if ((errno != EEXIST && errno != ENOENT) ||
		    ++tries >= PUT_TRIES) {
			rc = mv_err_sys(err, MV_EIO, "open '%s/%s'", sl->dir,
					w->tmp);
			w->tmp[0] = '\0';
			goto fail;
		}
	}
	if (direct) {
		int fl = fcntl(w->fd, F_GETFL);

		if (fl >= 0 && fcntl(w->fd, F_SETFL, fl | O_DIRECT) == 0 &&
		    posix_memalign((void **)&w->buf, DIO_ALIGN, BOUNCE) == 0)
			w->direct = 1;
	}
	*out = w;
	return 0;
fail:
	lw_free(w, 1);
	return rc;
}

/* Leave direct I/O: what the bounce buffer holds goes out buffered. */
static int lw_buffered(struct lwriter *w)
{
	int fl = fcntl(w->fd, F_GETFL);

	if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return -1;
	w->direct = 0;
	if (mv_pwrite_all(w->fd, w->buf, w->blen, (long long)w->off) < 0)
		return -1;
	w->off += w->blen;
	w->blen = 0;
	return 0;
}

/*
 * One direct write of len bytes (a multiple of DIO_ALIGN) at w->off.
 * Returns 0, -1 with errno, or 1 when the filesystem refused direct I/O
 * outright (then nothing was written and the caller goes buffered).
 */
static int lw_direct(struct lwriter *w, const unsigned char *p, size_t len)
{
	if (mv_pwrite_all(w->fd, p, len, (long long)w->off) < 0)
		return !w->written && errno == EINVAL ? 1 : -1;
	w->written = 1;
	w->off += len;
	return 0;
}

/* Write out what the bounce buffer holds (a multiple of DIO_ALIGN). */
static int lw_flush(struct lwriter *w)
{
	int rc = w->blen ? lw_direct(w, w->buf, w->blen) : 0;

	if (rc == 0)
		w->blen = 0;
	return rc;
}

static int lw_append(struct lwriter *w, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		const unsigned char *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		w->size += n;
		while (n && w->direct) {
			uint64_t pos = w->off + w->blen;
			size_t head = (DIO_ALIGN - pos % DIO_ALIGN) % DIO_ALIGN;
			size_t c;
			int rc;

			if (n >= head + 16 * DIO_ALIGN &&
			    ((uintptr_t)p - pos) % DIO_ALIGN == 0) {
				/* Bounce up to the boundary, then straight. */
				memcpy(w->buf + w->blen, p, head);
				w->blen += head;
				p += head;
				n -= head;
				rc = lw_flush(w);
				c = n & ~(size_t)(DIO_ALIGN - 1);
				if (rc == 0 && (rc = lw_direct(w, p, c)) == 0) {
					p += c;
					n -= c;
				}
			} else {
				c = n < BOUNCE - w->blen ? n : BOUNCE - w->blen;
				memcpy(w->buf + w->blen, p, c);
				w->blen += c;
				p += c;
				n -= c;
				rc = w->blen == BOUNCE ? lw_flush(w) : 0;
			}
			if (rc < 0)
				return -1;
			if (rc > 0 && lw_buffered(w) < 0)
				return -1;	/* refused: buffered from here */
		}
		if (n) {
			/* Buffered: w->off is the end of the file. */
			if (mv_pwrite_all(w->fd, p, n, (long long)w->off) < 0)
				return -1;
			w->off += n;
		}
	}
	return 0;
}

/* The last block, fsync, rename over the object, fsync the directory. */
static int lw_commit(struct lwriter *w, struct mv_err *err)
{
	struct store_local *sl = w->sl;
	int rc;

	if (w->direct && w->blen) {
		size_t padded = (w->blen + DIO_ALIGN - 1) & ~(size_t)(DIO_ALIGN - 1);
		size_t real = w->blen;

		memset(w->buf + w->blen, 0, padded - w->blen);
		w->blen = padded;
		rc = lw_flush(w);
		if (rc > 0) {
			w->blen = real;	/* buffered: no padding */
			rc = lw_buffered(w);
		}
		if (rc < 0)
			return mv_err_sys(err, MV_EIO, "write '%s/%s'", sl->dir,
					  w->tmp);
	}
	if (w->direct && ftruncate(w->fd, (off_t)w->size) < 0)
		return mv_err_sys(err, MV_EIO, "truncate '%s/%s'", sl->dir,
				  w->tmp);
	if (fsync(w->fd) < 0)
		return mv_err_sys(err, MV_EIO, "fsync '%s/%s'", sl->dir, w->tmp);
	rc = close(w->fd);
	w->fd = -1;
	if (rc < 0)
		return mv_err_sys(err, MV_EIO, "close '%s/%s'", sl->dir, w->tmp);
	if (renameat(sl->dirfd, w->tmp, sl->dirfd, w->path) < 0)
		return mv_err_sys(err, MV_EIO, "rename '%s/%s' to '%s'", sl->dir,
				  w->tmp, w->path);
	w->tmp[0] = '\0';
	return fsync_dir(sl, w->parent, err);
}

static int local_put(void *impl, const char *path, const struct iovec *iov,
		     int iovcnt, struct mv_err *err)
{
	struct store_local *sl = impl;
	struct lwriter *w;
	size_t total = 0;
	int rc;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	pthread_rwlock_rdlock(&sl->tmp_lock);
	rc = lw_open(sl, path, total >= DIRECT_FROM, &w, err);
	if (rc < 0)
		goto out;
	if (lw_append(w, iov, iovcnt) < 0)
		rc = mv_err_sys(err, MV_EIO, "write '%s/%s'", sl->dir, w->tmp);
	else
		rc = lw_commit(w, err);
	lw_free(w, 1);
out:
	pthread_rwlock_unlock(&sl->tmp_lock);
	return rc;
}

static int local_begin(void *impl, const char *path, void **w,
		       struct mv_err *err)
{
	return lw_open(impl, path, 1, (struct lwriter **)w, err);
}

static int local_append(void *impl, void *wp, const struct iovec *iov,
			int iovcnt, struct mv_err *err)
{
	struct lwriter *w = wp;

	(void)impl;
	if (lw_append(w, iov, iovcnt) < 0)
		return mv_err_sys(err, MV_EIO, "write '%s/%s'", w->sl->dir,
				  w->tmp);
	return 0;
}

static int local_commit(void *impl, void *wp, uint64_t *size,
			struct mv_err *err)
{
	struct lwriter *w = wp;
	int rc = lw_commit(w, err);

	(void)impl;
	*size = w->size;
	lw_free(w, 1);
	return rc;
}

static void local_abort(void *impl, void *wp)
{
	(void)impl;
	lw_free(wp, 1);
}

/* Open an object for reading; MV_ENOINPUT when there is none. */
static int open_obj(struct store_local *sl, const char *path,
		    struct stat *st, struct mv_err *err)
{
	int fd = openat(sl->dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return mv_err_sys(err, MV_ENOINPUT, "open '%s/%s'",
					  sl->dir, path);
		return mv_err_sys(err, MV_EIO, "open '%s/%s'", sl->dir, path);
	}
	if (fstat(fd, st) < 0) {
		mv_err_sys(err, MV_EIO, "stat '%s/%s'", sl->dir, path);
		close(fd);
		return MV_EIO;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return mv_err_set(err, MV_ENOINPUT, "open '%s/%s': not an "
				  "object", sl->dir, path);
	}
	return fd;
}

/* Read up to want bytes at off (fewer at the end): a get, or a range. */
static int local_get_range(void *impl, const char *path, uint64_t off,
			   size_t want, void **buf, size_t *len,
			   struct mv_err *err)
{
	struct store_local *sl = impl;
	struct stat st;
	char *b = NULL;
	size_t size, got = 0;
	int fd, rc = MV_EIO;

	if ((fd = open_obj(sl, path, &st, err)) < 0)
		return fd;
	size = off < (uint64_t)st.st_size ? st.st_size - off : 0;
	if (size > want)
		size = want;
	if (!(b = malloc(size + 1))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory reading "
				"'%s/%s'", sl->dir, path);
		goto out;
	}
	while (got < size) {
		ssize_t r = pread(fd, b + got, size - got, off + got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			mv_err_sys(err, MV_EIO, "read '%s/%s'", sl->dir, path);
			goto out;
		}
		if (r == 0) {
			mv_err_set(err, MV_EIO, "read '%s/%s': file shrank",
				   sl->dir, path);
			goto out;
		}
		got += r;
	}
	b[size] = '\0';
	*buf = b;
	*len = size;
	b = NULL;
	rc = 0;
out:
	free(b);
	close(fd);
	return rc;
}

static int local_get(void *impl, const char *path, void **buf, size_t *len,
		     struct mv_err *err)
{
	return local_get_range(impl, path, 0, SIZE_MAX - 1, buf, len, err);
}

static int local_map(void *impl, const char *path, const void **p,
		     size_t *len, void **handle, struct mv_err *err)
{
	struct store_local *sl = impl;
	struct map_handle *h;
	struct stat st;
	int fd, rc = MV_EIO;

	if ((fd = open_obj(sl, path, &st, err)) < 0)
		return fd;
	if (!(h = malloc(sizeof(*h)))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory");
		goto out;
	}
	h->len = st.st_size;
	h->addr = NULL;
	if (h->len) {
		h->addr = mmap(NULL, h->len, PROT_READ, MAP_SHARED, fd, 0);
		if (h->addr == MAP_FAILED) {
			mv_err_sys(err, MV_EIO, "mmap '%s/%s'", sl->dir, path);
			free(h);
			goto out;
		}
	}
	*p = h->addr ? h->addr : (const void *)"";
	*len = h->len;
	*handle = h;
	rc = 0;
out:
	close(fd);
	return rc;
}

static void local_unmap(void *impl, void *handle)
{
	struct map_handle *h = handle;

	(void)impl;
	if (h->addr)
		munmap(h->addr, h->len);
	free(h);
}

/*
 * A MAP_SHARED, read-only file mapping: its pages are the page cache's,
 * dropping them from this process loses nothing.
 */
static void local_map_evict(void *impl, void *handle)
{
	struct map_handle *h = handle;

	(void)impl;
	if (h->addr)
		madvise(h->addr, h->len, MADV_DONTNEED);
}

static int local_del(void *impl, const char *path, struct mv_err *err)
{
	struct store_local *sl = impl;
	char rel[REL_MAX], *slash;
	int rc;

	if (unlinkat(sl->dirfd, path, 0) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return 0;
		return mv_err_sys(err, MV_EIO, "unlink '%s/%s'", sl->dir,
				  path);
	}
	snprintf(rel, sizeof(rel), "%s", path);
	slash = strrchr(rel, '/');
	if (slash)
		*slash = '\0';
	rc = fsync_dir(sl, slash ? rel : "", err);
	/* Empty directories are no objects: remove them, best effort. */
	while (rc == 0 && slash) {
		if (unlinkat(sl->dirfd, rel, AT_REMOVEDIR) < 0)
			break;
		slash = strrchr(rel, '/');
		if (slash)
			*slash = '\0';
	}
	return rc;
}

/* A walk over the tree, listing objects or removing temporaries. */
struct walk {
	struct store_local *sl;
	const char *prefix;
	size_t plen;
	int clean;		/* remove temporaries instead of listing */
	int count;		/* temporaries removed */
	char spare[40];		/* but not those starting so ("": none) */
	int (*fn)(void *, const char *, uint64_t);
	void *arg;
	struct mv_err *err;
	char rel[REL_MAX + NAME_MAX + 2];
};

/* Whether the directory rel (length n) may hold paths with the prefix. */
static int dir_may_match(const struct walk *w, size_t n)
{
	size_t m = n + 1 < w->plen ? n + 1 : w->plen;

	/* rel + "/" against the prefix, over their common length. */
	if (m <= n)
		return !memcmp(w->rel, w->prefix, m);
	return !memcmp(w->rel, w->prefix, n) && w->prefix[n] == '/';
}

/* Walk the directory dfd, whose path is w->rel[0..n); closes dfd. */
static int walk_dir(struct walk *w, int dfd, size_t n)
{
	struct store_local *sl = w->sl;
	struct dirent *de;
	DIR *d = fdopendir(dfd);
	int rc = 0;

	if (!d) {
		close(dfd);
		return mv_err_sys(w->err, MV_EIO, "opendir '%s/%s'", sl->dir,
				  w->rel);
	}
	for (;;) {
		const char *name;
		struct stat st;
		size_t len, m;
		int type;

		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				rc = mv_err_sys(w->err, MV_EIO, "readdir "
						"'%s/%s'", sl->dir, w->rel);
			break;
		}
		name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		len = strlen(name);
		if (n + 1 + len >= sizeof(w->rel))
			continue;	/* longer than any object path */
		m = n;
		if (n)
			w->rel[m++] = '/';
		memcpy(w->rel + m, name, len + 1);
		m += len;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(dirfd(d), name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0)
				goto next;	/* gone meanwhile */
			type = S_ISDIR(st.st_mode) ? DT_DIR :
			       S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (type == DT_DIR) {
			int sub;

			if (!w->clean && !dir_may_match(w, m))
				goto next;
			sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY |
				     O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 && errno == ENOENT)
				goto next;
			if (sub < 0) {
				rc = mv_err_sys(w->err, MV_EIO, "open '%s/%s'",
						sl->dir, w->rel);
				break;
			}
			if ((rc = walk_dir(w, sub, m)) != 0)
				break;
			goto next;
		}
		if (type != DT_REG)
			goto next;
		if (!strncmp(name, MV_STORE_TMP_PREFIX, TMP_LEN)) {
			if (!w->clean || (w->spare[0] &&
			    !strncmp(name, w->spare, strlen(w->spare))))
				goto next;
			if (unlinkat(dirfd(d), name, 0) == 0)
				w->count++;
			else if (errno != ENOENT) {
				rc = mv_err_sys(w->err, MV_EIO, "unlink "
						"'%s/%s'", sl->dir, w->rel);
				break;
			}
			goto next;
		}
		if (w->clean || m > MV_STORE_PATH_MAX ||
		    strncmp(w->rel, w->prefix, w->plen))
			goto next;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			goto next;
		if ((rc = w->fn(w->arg, w->rel, st.st_size)) != 0)
			break;
next:
		w->rel[n] = '\0';
	}
	closedir(d);
	return rc;
}

static int local_list(void *impl, const char *prefix,
		      int (*fn)(void *, const char *, uint64_t), void *arg,
		      struct mv_err *err)
{
	struct store_local *sl = impl;
	struct walk *w = calloc(1, sizeof(*w));
	const char *slash = strrchr(prefix, '/');
	size_t n = slash ? (size_t)(slash - prefix) : 0;
	int dfd, rc;

	if (!w)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	w->sl = sl;
	w->prefix = prefix;
	w->plen = strlen(prefix);
	w->fn = fn;
	w->arg = arg;
	w->err = err;
	/* Start at the deepest directory the prefix names whole. */
	memcpy(w->rel, prefix, n);
	w->rel[n] = '\0';
	dfd = openat(sl->dirfd, n ? w->rel : ".", O_RDONLY | O_DIRECTORY |
		     O_CLOEXEC);
	if (dfd < 0 && (errno == ENOENT || errno == ENOTDIR))
		rc = 0;
	else if (dfd < 0)
		rc = mv_err_sys(err, MV_EIO, "open '%s/%s'", sl->dir, w->rel);
	else
		rc = walk_dir(w, dfd, n);
	free(w);
	return rc;
}

static int local_clean_tmp(void *impl, struct mv_err *err)
{
	struct store_local *sl = impl;
	struct walk *w = calloc(1, sizeof(*w));
	int dfd, rc;

	if (!w)
		return mv_err_set(err, MV_EINTERNAL, "out of memory");
	w->sl = sl;
	w->prefix = "";
	w->clean = 1;
	w->err = err;
	pthread_rwlock_wrlock(&sl->tmp_lock);
	/* Puts are over (the lock); writers begun may still be open. */
	if (__atomic_load_n(&sl->writers, __ATOMIC_RELAXED))
		snprintf(w->spare, sizeof(w->spare), "%s%ld-",
			 MV_STORE_TMP_PREFIX, (long)getpid());
	dfd = openat(sl->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		rc = mv_err_sys(err, MV_EIO, "open '%s'", sl->dir);
	else
		rc = walk_dir(w, dfd, 0);
	pthread_rwlock_unlock(&sl->tmp_lock);
	if (rc == 0)
		rc = w->count;
	free(w);
	return rc;
}

static const char *local_local_dir(void *impl)
{
	return ((struct store_local *)impl)->dir;
}

static void local_close(void *impl)
{
	struct store_local *sl = impl;

	if (!sl)
		return;
	if (sl->dirfd >= 0)
		close(sl->dirfd);
	pthread_rwlock_destroy(&sl->tmp_lock);
	free(sl->dir);
	free(sl);
}

static const struct mv_store_ops local_ops = {
	.name = "local",
	.put = local_put,
	.get = local_get,
	.get_range = local_get_range,
	.map = local_map,
	.unmap = local_unmap,
	.map_evict = local_map_evict,
	.del = local_del,
	.list = local_list,
	.clean_tmp = local_clean_tmp,
	.begin = local_begin,
	.append = local_append,
	.commit = local_commit,
	.abort = local_abort,
	.local_dir = local_local_dir,
	.close = local_close,
};

struct mv_store *mv_store_open_local(const char *dir, struct mv_err *err)
{
	struct store_local *sl = calloc(1, sizeof(*sl));

	if (!sl || !(sl->dir = strdup(dir))) {
		free(sl);
		mv_err_set(err, MV_EINTERNAL, "out of memory");
		return NULL;
	}
	sl->dirfd = -1;
	pthread_rwlock_init(&sl->tmp_lock, NULL);
	if (mv_mkdir_p(dir, err) < 0)
		goto fail;
	sl->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sl->dirfd < 0) {
		mv_err_sys(err, MV_EIO, "open '%s'", dir);
		goto fail;
	}
	return mv_store_new(&local_ops, sl, err);
fail:
	local_close(sl);
	return NULL;
}
