/*
 * meta.h - the metadata store: a key-value map with etcd's semantics
 * (byte-ordered keys, prefix ranges, atomic compare-and-swap transactions).
 * The local implementation keeps the map in memory and a write-ahead log in
 * a directory; an etcd one comes later behind the same struct mv_meta_ops.
 *
 * Every call is thread-safe, except mv_meta_close, which no other call on
 * the same store may overlap (a blocked mv_meta_watch included).  Keys are
 * non-empty NUL-terminated strings of at most MV_META_KEY_MAX bytes,
 * ordered bytewise; values are arbitrary bytes.  Functions return 0 or a
 * negative MV_E* code with err filled (err may be NULL); the positive
 * returns of each call are listed with it.  Nothing a call returns or
 * passes to a callback belongs to the caller unless said so (only
 * mv_meta_get's *val does).
 *
 * As in etcd, the store has one revision, a counter that every
 * transaction with ops (and every lease revocation or expiry that deletes
 * keys) raises by one (a txn whose only ops delete nothing takes none,
 * as in etcd: count on the order of revisions, not on their spacing); each key carries the
 * revision that created it (create_rev), the one that last changed it
 * (mod_rev) and how many times it was put since its creation (version).
 * Revisions survive compaction and restarts.  A store keeps a history of
 * changes (events) that mv_meta_watch reads from any revision after its
 * compaction point; older ones are "compacted".
 * Leases (mv_meta_lease_grant) carry keys that are deleted, in one
 * revision, when the lease expires or is revoked.
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

/*
 * mv_meta_watch's positive return when the revision asked for is older
 * than what the store still keeps; err holds MV_ESERVER "required revision
 * R has been compacted (compacted at C)", as etcd's ErrCompacted.  Read
 * the current state afresh (mv_meta_range_kv) and watch from its rev + 1.
 */
#define MV_META_COMPACTED 2

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

/* Which revision of a key a struct mv_meta_rcmp looks at (etcd's target). */
enum mv_meta_cmp_target {
	MV_META_CMP_MOD,	/* mod_rev */
	MV_META_CMP_CREATE,	/* create_rev */
	MV_META_CMP_VERSION,	/* version */
};

/* etcd's Compare.result: the key's side on the left. */
enum mv_meta_cmp_result {
	MV_META_EQ,
	MV_META_NE,
	MV_META_LT,
	MV_META_GT,
};

/*
 * Holds when the key's target compares to rev as result says; an absent
 * key counts as 0 (so MOD EQ 0 is another absence compare), as etcd.
 */
struct mv_meta_rcmp {
	const char *key;
	enum mv_meta_cmp_target target;
	enum mv_meta_cmp_result result;
	int64_t rev;
};

/*
 * A whole transaction, etcd's TxnRequest: every cmp and rcmp must hold
 * (together at most MV_META_TXN_OPS_MAX); leases is NULL or has one
 * entry per op, the lease a PUT attaches its key to (0: none; must be 0
 * for a delete).  rev is set by mv_meta_txn_req (see there).
 */
struct mv_meta_req {
	const struct mv_meta_cmp *cmps;
	size_t ncmp;
	const struct mv_meta_rcmp *rcmps;
	size_t nrcmp;
	const struct mv_meta_op *ops;
	size_t nops;
	const int64_t *leases;
	int64_t rev;		/* out */
};

/*
 * A key as the store holds it.  key and val (NUL-terminated after vlen
 * bytes) are valid during the callback only.  In a DEL event val is empty
 * and only key and mod_rev (the deleting revision) are set.
 */
struct mv_meta_kv {
	const char *key;
	const char *val;
	size_t vlen;
	int64_t create_rev, mod_rev, version;
	int64_t lease;		/* 0: none */
};

/* One change, as etcd's mvccpb.Event: type is MV_META_PUT or MV_META_DEL. */
struct mv_meta_event {
	enum mv_meta_optype type;
	struct mv_meta_kv kv;	/* kv.mod_rev is the event's revision */
};

/* What a store knows about itself; 0 where an implementation has no idea. */
struct mv_meta_stats {
	uint64_t keys;		/* live keys */
	uint64_t bytes;		/* live keys and values, encoded */
	uint64_t log_bytes;	/* local: size of meta.log */
	uint64_t torn_bytes;	/* local: torn tail cut at open, bytes */
	uint64_t compactions;	/* local: snapshots written since open */
	uint64_t txns;		/* transactions committed since open */
	int64_t revision;	/* the current revision */
	int64_t compact_revision; /* watches need a later revision */
	uint64_t leases;	/* live leases */
	uint64_t watch_connects; /* etcd: connections watches opened */
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
 * left exactly as it was.  The history for watches starts at the last
 * snapshot (compaction) of the log; in memory it keeps at most 64Ki events
 * or 8 MiB of keys and values, dropping the oldest revisions beyond.  A
 * thread expires leases while any exist.  Returns NULL with err set on
 * failure.
 */
struct mv_meta *mv_meta_open_local(const char *dir, struct mv_err *err);

/*
 * Open etcd v3 through its HTTP/JSON gateway (meta_etcd.c, libcurl and
 * jansson): endpoints is a comma-separated list of http:// or https://
 * URLs, tried in turn.  Keys are used as given.  Same semantics as the
 * local store; a server that does not answer is MV_EAGAIN naming it (a
 * tool exits 75), an answer that cannot be parsed MV_EPROTO.  Returns
 * NULL with err set when no endpoint answers.
 */
struct mv_meta *mv_meta_open_etcd(const char *endpoints, struct mv_err *err);

/*
 * mv_meta_open_etcd with every key under the namespace ns (as etcd's
 * --namespace): ns is put before every key sent and taken off every key
 * received, so the store sees only the keys starting with ns, and a
 * DELPREFIX "" deletes only those.  "" is mv_meta_open_etcd.  Revisions,
 * leases and compaction stay those of the whole etcd.
 */
struct mv_meta *mv_meta_open_etcd_ns(const char *endpoints, const char *ns,
				     struct mv_err *err);

/*
 * Look key up.  Returns 0 and *val, a malloc'ed copy of the value that the
 * caller frees (NUL-terminated after its *vlen bytes, so text values are
 * C strings), or 1 if the key is absent (*val NULL, *vlen 0), or MV_E*.
 */
int mv_meta_get(struct mv_meta *m, const char *key, char **val,
		size_t *vlen, struct mv_err *err);
/* mv_meta_get, with *mod the key's mod revision (0 when absent): for a
 * compare-and-swap of the value read (MV_META_CMP_MOD). */
int mv_meta_get_rev(struct mv_meta *m, const char *key, char **val,
		    size_t *vlen, int64_t *mod, struct mv_err *err);

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

/*
 * mv_meta_txn with revision compares and leases, which also gives the
 * revision: when it returns 0, req->rev is the revision of this txn (or,
 * with no ops, the current one); when it returns MV_META_CMPFAIL, the
 * current revision.  Same rules and returns as mv_meta_txn; a PUT with a
 * lease that does not exist fails with MV_ESERVER "lease ... not found"
 * and changes nothing.
 */
int mv_meta_txn_req(struct mv_meta *m, struct mv_meta_req *req,
		    struct mv_err *err);

/*
 * Look key up with its revisions: calls fn(arg, kv) once and returns fn's
 * return (0 unless fn says otherwise) if key exists, 1 if it is absent, or
 * MV_E*.
 */
int mv_meta_get_kv(struct mv_meta *m, const char *key,
		   int (*fn)(void *arg, const struct mv_meta_kv *kv),
		   void *arg, struct mv_err *err);

/*
 * mv_meta_range with the revisions of every key; *rev (may be NULL) is
 * the revision of the snapshot walked: watch from *rev + 1 to see every
 * later change.  Same snapshot and stopping rules as mv_meta_range.
 */
int mv_meta_range_kv(struct mv_meta *m, const char *prefix,
		     int (*fn)(void *arg, const struct mv_meta_kv *kv),
		     void *arg, int64_t *rev, struct mv_err *err);

/*
 * Wait, at most timeout_ms (0: do not wait; <0: forever), until the store
 * holds events of keys starting with prefix with revision >= from (0: the
 * next revision from now), then call fn for each of them, in revision
 * order (within one revision, in the order of the txn's ops), on a
 * snapshot taken at the call: fn may call into m.  *next (may be NULL) is
 * the revision to ask for next, past every event seen.  Returns 0 (no
 * fn call when the time ran out), MV_META_COMPACTED (positive; see above),
 * a non-zero return of fn, which stops the walk (*next is then not
 * reliable), or MV_E*.
 */
int mv_meta_watch(struct mv_meta *m, const char *prefix, int64_t from,
		  int timeout_ms,
		  int (*fn)(void *arg, const struct mv_meta_event *ev),
		  void *arg, int64_t *next, struct mv_err *err);

/*
 * Drop the history up to revision rev (at most the current revision), as
 * etcd's Compact: later watches from rev or before are MV_META_COMPACTED.
 * Compacting to an already compacted revision is fine.
 */
int mv_meta_compact(struct mv_meta *m, int64_t rev, struct mv_err *err);

/*
 * Leases, as etcd's: grant one that expires ttl_ms from now unless kept
 * alive (*id: its id, never 0); keepalive restarts its ttl; revoke deletes
 * it now.  When a lease expires or is revoked, every key put with it is
 * deleted in one transaction with its own revision (watches see the DEL
 * events).  After a restart, a lease's ttl starts afresh.  keepalive and
 * revoke of an unknown or expired lease fail with MV_ESERVER "lease ...
 * not found".  etcd counts ttl in whole seconds: its backend rounds up,
 * and raises a ttl below its minimum (1.5 election timeouts: 2 s by
 * default, 1 s for scripts/etcd.sh's test server).
 */
int mv_meta_lease_grant(struct mv_meta *m, int64_t ttl_ms, int64_t *id,
			struct mv_err *err);
int mv_meta_lease_keepalive(struct mv_meta *m, int64_t id,
			    struct mv_err *err);
int mv_meta_lease_revoke(struct mv_meta *m, int64_t id, struct mv_err *err);

/* The current revision, into *rev. */
int mv_meta_revision(struct mv_meta *m, int64_t *rev, struct mv_err *err);

/* One-op transactions: set key, delete key (absent is fine). */
int mv_meta_put(struct mv_meta *m, const char *key, const void *val,
		size_t vlen, struct mv_err *err);
int mv_meta_del(struct mv_meta *m, const char *key, struct mv_err *err);

/* Fill st; never fails for the local store (etcd: MV_EAGAIN, MV_EPROTO). */
int mv_meta_stats(struct mv_meta *m, struct mv_meta_stats *st,
		  struct mv_err *err);

/* Close and free m, releasing its lock; NULL is a no-op. */
void mv_meta_close(struct mv_meta *m);

/*
 * The implementation interface, for meta_*.c only.  meta.c checks the
 * arguments (key lengths, txn limits, overlapping ops) before calling an
 * op, so implementations see only well-formed requests; they do their own
 * locking.  txn returns MV_META_CMPFAIL and watch MV_META_COMPACTED
 * without touching err; the dispatcher sets the message.  get returns 1
 * when the key is absent.  impl is the implementation's own state.
 */
struct mv_meta_ops {
	const char *name;	/* "local", "etcd" */
	int (*get)(void *impl, const char *key,
		   int (*fn)(void *, const struct mv_meta_kv *), void *arg,
		   struct mv_err *err);
	int (*range)(void *impl, const char *prefix,
		     int (*fn)(void *, const struct mv_meta_kv *), void *arg,
		     int64_t *rev, struct mv_err *err);
	int (*txn)(void *impl, struct mv_meta_req *req, struct mv_err *err);
	int (*watch)(void *impl, const char *prefix, int64_t from,
		     int timeout_ms,
		     int (*fn)(void *, const struct mv_meta_event *), void *arg,
		     int64_t *next, struct mv_err *err);
	int (*compact)(void *impl, int64_t rev, struct mv_err *err);
	int (*lease_grant)(void *impl, int64_t ttl_ms, int64_t *id,
			   struct mv_err *err);
	int (*lease_keepalive)(void *impl, int64_t id, struct mv_err *err);
	int (*lease_revoke)(void *impl, int64_t id, struct mv_err *err);
	int (*stats)(void *impl, struct mv_meta_stats *st,
		     struct mv_err *err);
	void (*close)(void *impl);
	/* Optional: the current revision, cheaper than stats. */
	int (*revision)(void *impl, int64_t *rev, struct mv_err *err);
};

/*
 * Wrap impl in a struct mv_meta that dispatches to ops; on failure calls
 * ops->close(impl) and returns NULL.
 */
struct mv_meta *mv_meta_new(const struct mv_meta_ops *ops, void *impl,
			    struct mv_err *err);

#endif
