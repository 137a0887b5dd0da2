/*
 * meta.h - the metadata store: a key-value map with etcd's semantics
 * (byte-ordered keys, prefix ranges, atomic compare-and-swap transactions).
 * The local implementation keeps the map in memory and a write-ahead log in
 * a directory; an etcd one comes later behind the same struct mv_meta_ops.
 *
 * Every call is thread-safe.  Keys are non-empty NUL-terminated strings of
 * at most MV_META_KEY_MAX bytes, ordered bytewise; values are arbitrary
 * bytes.  Functions return 0 or a negative MV_E* code with err filled.
 */
#ifndef MV_META_H
#define MV_META_H

#include <stddef.h>
#include <stdint.h>
#include "mv.h"

/*
 * Limits of one transaction, those of etcd's defaults (--max-txn-ops 128,
 * --max-request-bytes 1.5 MiB minus room for its JSON and base64), so that
 * code that works on the local store works on etcd.  The local store
 * enforces them too.
 */
#define MV_META_KEY_MAX 4096
#define MV_META_TXN_OPS_MAX 128		/* compares, and ops, each */
#define MV_META_TXN_BYTES_MAX (1u << 20)	/* keys + values of a txn */

/*
 * mv_meta_txn's positive return when a compare does not hold: nothing was
 * changed, and err holds MV_ESERVER "compare failed" (clear it with
 * mv_err_clear before reusing err for a retry).
 */
#define MV_META_CMPFAIL 1

struct mv_meta;

enum mv_meta_optype {
	MV_META_PUT,		/* set key to val/vlen */
	MV_META_DEL,		/* delete key; absent is fine */
	MV_META_DELPREFIX,	/* delete keys starting with key ("": all) */
};

struct mv_meta_op {
	enum mv_meta_optype type;
	const char *key;
	const void *val;	/* PUT only */
	size_t vlen;
};

/* Holds when key has exactly this value, or when val is NULL, is absent. */
struct mv_meta_cmp {
	const char *key;
	const void *val;
	size_t vlen;
};

/* What a store knows about itself; 0 where an implementation has no idea. */
struct mv_meta_stats {
	uint64_t keys;		/* live keys */
	uint64_t bytes;		/* live keys and values, encoded */
	uint64_t log_bytes;	/* local: size of meta.log */
	uint64_t torn_bytes;	/* local: torn tail cut at open, bytes */
	uint64_t compactions;	/* local: snapshots written since open */
	uint64_t txns;		/* transactions committed since open */
};

/*
 * Open the local store in dir (created if missing, with parents): its files
 * are dir/LOCK and dir/meta.log; give it a directory of its own.  Replays
 * the log, cutting a torn tail left by a crash: bad bytes that run to the
 * end of the file with no valid record after them.  Holds an exclusive
 * lock on dir until mv_meta_close: a second open of the same dir, from this
 * or another process, fails with MV_EAGAIN "data directory 'dir' is in use
 * by another process".  A corrupt log (bad header, a record whose checksum
 * matches but that does not decode, or a bad record with a valid one after
 * it) is MV_EDATA naming the file and the byte offset, and then the log is
 * left exactly as it was.  Returns NULL with err set on failure.
 */
struct mv_meta *mv_meta_open_local(const char *dir, struct mv_err *err);

/*
 * Look key up.  Returns 0 and *val, a malloc'ed copy of the value that the
 * caller frees (NUL-terminated after its *vlen bytes, so text values are
 * C strings), or 1 if the key is absent (*val NULL, *vlen 0), or MV_E*.
 */
int mv_meta_get(struct mv_meta *m, const char *key, char **val,
		size_t *vlen, struct mv_err *err);

/*
 * Call fn for every key that starts with prefix ("" for all), in key
 * order, on a snapshot taken at the call: fn may call into m, and does not
 * see changes made meanwhile.  key and val (NUL-terminated after vlen
 * bytes) are valid during the call only.  A non-zero return from fn stops
 * the walk and is returned; otherwise 0 or MV_E*.
 */
int mv_meta_range(struct mv_meta *m, const char *prefix,
		  int (*fn)(void *arg, const char *key, const void *val,
			    size_t vlen),
		  void *arg, struct mv_err *err);

/*
 * If every cmp holds, apply every op, atomically and durably: when it
 * returns 0 the change has reached stable storage and every later call
 * sees it; otherwise nothing changed, not even after a crash.  Returns 0,
 * MV_META_CMPFAIL (positive; see above), or MV_E*: MV_EUSAGE for a txn
 * etcd would refuse (more than MV_META_TXN_OPS_MAX compares or ops, more
 * than MV_META_TXN_BYTES_MAX bytes, a key put twice or put and deleted by
 * the same txn, an empty or too long key), MV_EIO when the store cannot
 * write (disk full, I/O error).  After MV_EIO the local store cuts its log
 * back to the last good record (ftruncate and fdatasync), so the txn is
 * not applied, not even after a restart, and later txns are tried again;
 * only if that cut fails too does it refuse writes until reopened, and
 * then whether this txn survives a restart is unknown.  ncmp and nops may
 * be 0.
 */
int mv_meta_txn(struct mv_meta *m, const struct mv_meta_cmp *cmps,
		size_t ncmp, const struct mv_meta_op *ops, size_t nops,
		struct mv_err *err);

/* One-op transactions: set key, delete key (absent is fine). */
int mv_meta_put(struct mv_meta *m, const char *key, const void *val,
		size_t vlen, struct mv_err *err);
int mv_meta_del(struct mv_meta *m, const char *key, struct mv_err *err);

/* Fill st; never fails for the local store. */
int mv_meta_stats(struct mv_meta *m, struct mv_meta_stats *st,
		  struct mv_err *err);

/* Close and free m, releasing its lock; NULL is a no-op. */
void mv_meta_close(struct mv_meta *m);

/*
 * The implementation interface, for meta_*.c only.  meta.c checks the
 * arguments (key lengths, txn limits, overlapping ops) before calling an
 * op, so implementations see only well-formed requests; they do their own
 * locking.  txn returns MV_META_CMPFAIL without touching err; the
 * dispatcher sets the message.  impl is the implementation's own state.
 */
struct mv_meta_ops {
	const char *name;	/* "local", "etcd" */
	int (*get)(void *impl, const char *key, char **val, size_t *vlen,
		   struct mv_err *err);
	int (*range)(void *impl, const char *prefix,
		     int (*fn)(void *, const char *, const void *, size_t),
		     void *arg, struct mv_err *err);
	int (*txn)(void *impl, const struct mv_meta_cmp *cmps, size_t ncmp,
		   const struct mv_meta_op *ops, size_t nops,
		   struct mv_err *err);
	void (*stats)(void *impl, struct mv_meta_stats *st);
	void (*close)(void *impl);
};

/*
 * Wrap impl in a struct mv_meta that dispatches to ops; on failure calls
 * ops->close(impl) and returns NULL.
 */
struct mv_meta *mv_meta_new(const struct mv_meta_ops *ops, void *impl,
			    struct mv_err *err);

#endif
