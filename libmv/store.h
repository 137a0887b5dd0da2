/*
 * store.h - segment file storage: whole objects addressed by relative
 * paths such as "docs/seg-000001.vec", written atomically and never
 * modified in place.  The local implementation keeps them as files under a
 * directory; an S3 one comes later behind the same struct mv_store_ops.
 *
 * Every call is thread-safe.  A path is 1 to MV_STORE_PATH_MAX bytes of
 * '/'-separated components, none empty, ".", ".." or starting with
 * ".tmp-" (reserved for temporaries), and no leading '/'; anything else is
 * MV_EUSAGE.  Functions return 0 or a negative MV_E* code with err filled.
 */
#ifndef MV_STORE_H
#define MV_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "mv.h"

#define MV_STORE_PATH_MAX 1024	/* S3's key limit */
#define MV_STORE_TMP_PREFIX ".tmp-"

struct mv_store;

/*
 * Open the local store rooted at dir (created if missing, with parents).
 * The store owns the whole tree under dir: keep other files out of it.
 * Returns NULL with err set on failure.
 */
struct mv_store *mv_store_open_local(const char *dir, struct mv_err *err);

/*
 * An S3-compatible store (store_s3.c, libcurl's SigV4): path-style URLs
 * endpoint/bucket/prefix+path, http or https.  The bucket must exist.
 * cache_dir (may be NULL) holds downloaded objects for mv_store_map
 * (objects are immutable, so a cached copy of the right size is reused
 * after a restart); without it a map reads the object into memory.
 * Opening lists the bucket once: a wrong key is MV_EPERM with S3's code
 * (SignatureDoesNotMatch, InvalidAccessKeyId), a missing bucket
 * MV_ECONFIG.  Writers buffer 8 MiB, then go on as a multipart upload
 * (completed at commit, aborted on abort or failure).  Requests are
 * retried with backoff on connection errors, 5xx and 429, never on 4xx.  An endpoint that does not answer, or answers 5xx
 * after the retries, is MV_EAGAIN naming it (a tool exits 75).
 */
struct mv_s3_conf {
	const char *endpoint;	/* http://127.0.0.1:7480 */
	const char *bucket;
	const char *region;	/* "us-east-1" when NULL */
	const char *access_key, *secret_key;	/* NULL: from the environment
						 * (AWS_ACCESS_KEY_ID, ...) */
	const char *session_token;	/* temporary credentials' token, sent
					 * as x-amz-security-token; NULL:
					 * AWS_SESSION_TOKEN when the keys
					 * come from the environment */
	const char *ca_file;	/* https: the PEM file of the CAs trusted
				 * (only those); NULL: AWS_CA_BUNDLE, else
				 * libcurl's system store */
	const char *prefix;	/* prepended to every path; NULL: "" (it
				 * counts against S3's 1024-byte keys) */
	const char *cache_dir;
};
struct mv_store *mv_store_open_s3(const struct mv_s3_conf *c,
				  struct mv_err *err);

/*
 * Create or replace path with the concatenation of the iovcnt buffers of
 * iov, atomically and durably: after a crash path holds either its old
 * content or all of the new.  Local: a temporary (".tmp-...") in the same
 * directory, written, fsync'ed, renamed over path, and the directory
 * fsync'ed; parent directories are created as needed.
 */
int mv_store_put(struct mv_store *s, const char *path,
		 const struct iovec *iov, int iovcnt, struct mv_err *err);

/*
 * A put in pieces, for objects too big to hold in one set of buffers or
 * produced over time: begin, append in order, then commit (atomic and
 * durable as mv_store_put) or abort.  The object appears only at commit.
 * Local: a temporary written with direct I/O where the filesystem allows
 * it (appends whose buffers are page-aligned and a multiple of 4096 bytes
 * long go straight from memory to the disk).  A writer is used by one
 * thread at a time.  commit and abort free it, commit even when it fails;
 * *size gets the bytes written.
 */
struct mv_store_writer;
int mv_store_begin(struct mv_store *s, const char *path,
		   struct mv_store_writer **w, struct mv_err *err);
int mv_store_append(struct mv_store_writer *w, const struct iovec *iov,
		    int iovcnt, struct mv_err *err);
int mv_store_commit(struct mv_store_writer *w, uint64_t *size,
		    struct mv_err *err);
/* Discard; NULL is a no-op. */
void mv_store_abort(struct mv_store_writer *w);

/*
 * Read the whole object into *buf, malloc'ed, that the caller frees (one
 * NUL byte follows its *len bytes).  MV_ENOINPUT if it does not exist.
 */
int mv_store_get(struct mv_store *s, const char *path, void **buf,
		 size_t *len, struct mv_err *err);

/*
 * Read up to len bytes of path from byte off into *buf, malloc'ed, that
 * the caller frees (one NUL byte follows the *got bytes read): fewer than
 * len only at the object's end, none from off at or past it.  S3: one GET
 * with a Range header.  MV_ENOINPUT if the object does not exist.
 */
int mv_store_get_range(struct mv_store *s, const char *path, uint64_t off,
		       size_t len, void **buf, size_t *got,
		       struct mv_err *err);

/*
 * Map the whole object read-only: *p and *len until
 * mv_store_unmap(s, *handle).  The mapping keeps the content seen at the
 * call even if the object is replaced or deleted meanwhile (objects are
 * never written in place).  Local: mmap(MAP_SHARED, PROT_READ); an empty
 * object gives a non-NULL *p and *len 0.  MV_ENOINPUT if absent.
 */
int mv_store_map(struct mv_store *s, const char *path, const void **p,
		 size_t *len, void **handle, struct mv_err *err);
/* Release a mapping; a NULL handle is a no-op. */
void mv_store_unmap(struct mv_store *s, void *handle);
/*
 * Give back the memory a mapping's pages hold, keeping the mapping: what
 * is read again is faulted in afresh, with the same content.  For a
 * mapping only read now and then after a pass over all of it (a checksum,
 * a build).  Local: madvise(MADV_DONTNEED), the pages stay in the page
 * cache; a no-op where the mapping is a copy in memory (or NULL).
 */
void mv_store_map_evict(struct mv_store *s, void *handle);

/*
 * Delete path, durably; an absent object is not an error.  Local: empty
 * parent directories go too.
 */
int mv_store_del(struct mv_store *s, const char *path, struct mv_err *err);

/*
 * Call fn for every object whose path starts with prefix ("" for all;
 * a plain string prefix as in S3, so "docs/seg-" works), in no particular
 * order, with its size in bytes; temporaries are skipped.  fn may put and
 * delete objects; whether it then sees them is unspecified.  A non-zero
 * return from fn stops the walk and is returned; otherwise 0 or MV_E*.
 */
int mv_store_list(struct mv_store *s, const char *prefix,
		  int (*fn)(void *arg, const char *path, uint64_t size),
		  void *arg, struct mv_err *err);

/*
 * Remove the temporaries a crash left behind and return how many, or
 * MV_E*.  Call it when no put is in flight from another process (at node
 * start; this process's puts are waited for, and while it has writers
 * open its own temporaries are spared).
 */
int mv_store_clean_tmp(struct mv_store *s, struct mv_err *err);

/*
 * Abort the multipart uploads under prefix that were never completed
 * nor aborted (a process killed while it streamed a large object) and
 * return how many, or MV_E*.  Call it only for names nobody may be
 * writing now (a cluster node's own, at its start).  A store without
 * uploads has none: 0.
 */
int mv_store_clean_uploads(struct mv_store *s, const char *prefix,
			   struct mv_err *err);

/*
 * The directory that holds the objects as files, local_dir/path, for a
 * fast path that needs a real file (e.g. a library that opens by name), or
 * NULL when the implementation has none.  Valid until mv_store_close.
 */
const char *mv_store_local_dir(struct mv_store *s);

/*
 * The bytes this store has handed out since it was opened: the lengths of
 * every successful get, get_range and map (a map counts its whole object,
 * whether or not the pages are touched).  What a node reads from S3 or a
 * shared directory, shown by STAT io (docs/PROTOCOL.md).  0 for NULL.
 */
uint64_t mv_store_bytes_read(struct mv_store *s);

/* Close and free s; NULL is a no-op.  Mappings must be released first. */
void mv_store_close(struct mv_store *s);

/*
 * The implementation interface, for store_*.c only.  store.c checks paths
 * and arguments before calling an op, so implementations see only valid
 * paths; they do their own locking.  impl is the implementation's state.
 * local_dir may be NULL.
 */
struct mv_store_ops {
	const char *name;	/* "local", "s3" */
	int (*put)(void *impl, const char *path, const struct iovec *iov,
		   int iovcnt, struct mv_err *err);
	int (*get)(void *impl, const char *path, void **buf, size_t *len,
		   struct mv_err *err);
	int (*get_range)(void *impl, const char *path, uint64_t off,
			 size_t len, void **buf, size_t *got,
			 struct mv_err *err);
	int (*map)(void *impl, const char *path, const void **p,
		   size_t *len, void **handle, struct mv_err *err);
	void (*unmap)(void *impl, void *handle);
	int (*del)(void *impl, const char *path, struct mv_err *err);
	int (*list)(void *impl, const char *prefix,
		    int (*fn)(void *, const char *, uint64_t), void *arg,
		    struct mv_err *err);
	int (*clean_tmp)(void *impl, struct mv_err *err);
	int (*clean_uploads)(void *impl, const char *prefix,
			     struct mv_err *err);	/* may be NULL */
	int (*begin)(void *impl, const char *path, void **w,
		     struct mv_err *err);
	int (*append)(void *impl, void *w, const struct iovec *iov,
		      int iovcnt, struct mv_err *err);
	int (*commit)(void *impl, void *w, uint64_t *size,
		      struct mv_err *err);
	void (*abort)(void *impl, void *w);
	const char *(*local_dir)(void *impl);
	void (*close)(void *impl);
	void (*map_evict)(void *impl, void *handle);	/* may be NULL */
};

/*
 * Wrap impl in a struct mv_store that dispatches to ops; on failure calls
 * ops->close(impl) and returns NULL.
 */
struct mv_store *mv_store_new(const struct mv_store_ops *ops, void *impl,
			      struct mv_err *err);

#endif
