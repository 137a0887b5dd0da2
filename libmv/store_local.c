/*
 * store_local.c - the segment store in a local directory: an object is the
 * file dir/path, replaced only by renaming a fully written and fsync'ed
 * temporary over it.  It serves the embedded node and any shared
 * filesystem; S3 lives in its own file.
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
#define IOV_BATCH 64
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
		if (mkdirat(sl->dirfd, rel, 0755) == 0) {
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

/* writev every byte of iov, through partial writes and EINTR. */
static int writev_all(int fd, const struct iovec *iov, int iovcnt)
{
	struct iovec v[IOV_BATCH];
	size_t off = 0;		/* bytes of iov[i] already written */
	int i = 0;

	while (i < iovcnt) {
		ssize_t w;
		size_t left;
		int n = 0;

		for (int j = i; j < iovcnt && n < IOV_BATCH; j++, n++) {
			v[n].iov_base = (char *)iov[j].iov_base +
					(j == i ? off : 0);
			v[n].iov_len = iov[j].iov_len - (j == i ? off : 0);
		}
		w = writev(fd, v, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		left = w;
		while (i < iovcnt && left >= iov[i].iov_len - off) {
			left -= iov[i].iov_len - off;
			off = 0;
			i++;
		}
		off += left;
		if (w == 0 && i < iovcnt) {
			errno = ENOSPC;
			return -1;
		}
	}
	return 0;
}

/*
 * Write iov with direct I/O (fd has O_DIRECT): a large buffer whose
 * address is congruent to its file offset modulo DIO_ALIGN goes straight
 * from memory to the disk; everything else passes through an aligned
 * bounce buffer.  The last block is padded, then the file cut to size.
 * Fresh page-cache pages cost more than the disk on some machines (a VM
 * that hands free memory back to its host), and a flush's vectors are kept
 * in memory anyway.  0, -1 with errno, or 1 if the filesystem refuses
 * direct I/O before anything was written (the caller then writes
 * through the page cache).
 */
static int write_direct(int fd, const struct iovec *iov, int iovcnt,
			size_t total)
{
	unsigned char *buf;
	size_t blen = 0;
	off_t off = 0;		/* file offset of buf[0] */
	int rc = -1, first = 1;

	if (posix_memalign((void **)&buf, DIO_ALIGN, BOUNCE)) {
		errno = ENOMEM;
		return -1;
	}
#define DIO_WRITE(p, len) do {						\
		if (mv_pwrite_all(fd, (p), (len), off) < 0) {		\
			if (first && errno == EINVAL)			\
				rc = 1;					\
			goto out;					\
		}							\
		first = 0;						\
		off += (off_t)(len);					\
	} while (0)
	for (int i = 0; i < iovcnt; i++) {
		const unsigned char *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		while (n) {
			size_t pos = (size_t)off + blen;
			size_t head = (DIO_ALIGN - pos % DIO_ALIGN) % DIO_ALIGN;

			if (n >= head + 16 * DIO_ALIGN &&
			    ((uintptr_t)p - pos) % DIO_ALIGN == 0) {
				size_t mid = (n - head) & ~(size_t)(DIO_ALIGN - 1);

				memcpy(buf + blen, p, head);
				blen += head;
				if (blen)
					DIO_WRITE(buf, blen);
				blen = 0;
				DIO_WRITE(p + head, mid);
				p += head + mid;
				n -= head + mid;
			} else {
				size_t c = n < BOUNCE - blen ? n : BOUNCE - blen;

				memcpy(buf + blen, p, c);
				blen += c;
				p += c;
				n -= c;
				if (blen == BOUNCE) {
					DIO_WRITE(buf, blen);
					blen = 0;
				}
			}
		}
	}
	if (blen) {
		size_t padded = (blen + DIO_ALIGN - 1) & ~(size_t)(DIO_ALIGN - 1);

		memset(buf + blen, 0, padded - blen);
		DIO_WRITE(buf, padded);
	}
#undef DIO_WRITE
	rc = ftruncate(fd, (off_t)total) < 0 ? -1 : 0;
out:
	free(buf);
	return rc;
}

/*
 * Write all of iov to the fresh file fd: large objects with direct I/O
 * where the filesystem allows it, the rest through the page cache.
 */
static int write_obj(int fd, const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	int flags, rc;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total < DIRECT_FROM || (flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags | O_DIRECT) < 0)
		return writev_all(fd, iov, iovcnt);
	rc = write_direct(fd, iov, iovcnt, total);
	if (rc <= 0)
		return rc;
	if (fcntl(fd, F_SETFL, flags) < 0 || ftruncate(fd, 0) < 0)
		return -1;
	return writev_all(fd, iov, iovcnt);
}

static int local_put(void *impl, const char *path, const struct iovec *iov,
		     int iovcnt, struct mv_err *err)
{
	struct store_local *sl = impl;
	char parent[MV_STORE_PATH_MAX + 1], tmp[REL_MAX];
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	int fd = -1, rc = MV_EIO, tries = 0;

	memcpy(parent, path, plen);
	parent[plen] = '\0';
	tmp[0] = '\0';
	pthread_rwlock_rdlock(&sl->tmp_lock);
	for (;;) {
		unsigned long seq = __atomic_fetch_add(&sl->seq, 1,
						       __ATOMIC_RELAXED);

		rc = plen ? mkdirs(sl, parent, err) : 0;
		if (rc < 0)
			goto out;
		if (rc > 0 && ++tries < PUT_TRIES)
			continue;
		snprintf(tmp, sizeof(tmp), "%s%s%s%ld-%lu", parent,
			 plen ? "/" : "", MV_STORE_TMP_PREFIX,
			 (long)getpid(), seq);
		fd = openat(sl->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
			    O_CLOEXEC, 0644);
		if (fd >= 0)
			break;
		/* A stale name, or a del that just removed the parent. */
		if ((errno != EEXIST && errno != ENOENT) ||
		    ++tries >= PUT_TRIES) {
			rc = mv_err_sys(err, MV_EIO, "open '%s/%s'", sl->dir,
					tmp);
			tmp[0] = '\0';
			goto out;
		}
	}
	rc = MV_EIO;
	if (write_obj(fd, iov, iovcnt) < 0) {
		mv_err_sys(err, MV_EIO, "write '%s/%s'", sl->dir, tmp);
		goto out;
	}
	if (fsync(fd) < 0) {
		mv_err_sys(err, MV_EIO, "fsync '%s/%s'", sl->dir, tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		mv_err_sys(err, MV_EIO, "close '%s/%s'", sl->dir, tmp);
		goto out;
	}
	fd = -1;
	if (renameat(sl->dirfd, tmp, sl->dirfd, path) < 0) {
		mv_err_sys(err, MV_EIO, "rename '%s/%s' to '%s'", sl->dir,
			   tmp, path);
		goto out;
	}
	tmp[0] = '\0';
	rc = fsync_dir(sl, parent, err);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0])
		unlinkat(sl->dirfd, tmp, 0);
	pthread_rwlock_unlock(&sl->tmp_lock);
	return rc;
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

static int local_get(void *impl, const char *path, void **buf, size_t *len,
		     struct mv_err *err)
{
	struct store_local *sl = impl;
	struct stat st;
	char *b = NULL;
	size_t size, got = 0;
	int fd, rc = MV_EIO;

	if ((fd = open_obj(sl, path, &st, err)) < 0)
		return fd;
	size = st.st_size;
	if (!(b = malloc(size + 1))) {
		rc = mv_err_set(err, MV_EINTERNAL, "out of memory reading "
				"'%s/%s'", sl->dir, path);
		goto out;
	}
	while (got < size) {
		ssize_t r = pread(fd, b + got, size - got, got);

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
			if (!w->clean)
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
	.map = local_map,
	.unmap = local_unmap,
	.del = local_del,
	.list = local_list,
	.clean_tmp = local_clean_tmp,
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
