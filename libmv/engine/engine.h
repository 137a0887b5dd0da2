/*
 * engine.h - the public API of the engine (libmv/engine/, a library): the
 * state of one node, its collections, their flushed segments, pending
 * batches and named sessions, and the operations that mv-noded's protocol
 * handlers and main.c call; what only the engine's own files share is in
 * internal.h.  Storage and metadata are reached only through the mv_store
 * and mv_meta seams, so the node does not know whether it runs embedded
 * or in a cluster.
 *
 * Locking, in this order: node.slock (the session table) or node.blist
 * (the connections' batches, for auto-flush), a batch's mutex,
 * node.commit, then node.lock (the collection list) or a collection's
 * lock;
 * node.commit serialises commits (one metadata transaction at a time);
 * coll.lock (rwlock) guards a collection's segments, id map and deletion
 * bitmaps: searches hold it shared for their whole run, a commit holds it
 * exclusively only to swap in what it already wrote.  A batch has its own
 * mutex (a connection and the auto-flush thread share it).
 *
 * A merge, an index build and an index drop read segments without
 * coll.lock, from a snapshot taken after node_coll_reader_start (a merge
 * and a build also exclude each other and the placer's unloading:
 * coll.compacting, build.state BUILD_RUNNING under coll.build_lock).  A
 * follower's reload (cluster) never waits for them: it swaps new segment
 * structs in under coll.lock, the old ones lend their parts to the new
 * (seg.lent, never freed through the old), and the old contents are
 * parked on coll.parked until the last reader ends (node_coll_park,
 * node_coll_reader_end; coll.park_lock, a leaf).  The reader's commit,
 * under node.commit, finds its segments again by path in c->segs.
 */
#ifndef MV_ENGINE_H
#define MV_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "bigmem.h"
#include "conf.h"
#include "idmap.h"
#include "index.h"
#include "meta.h"
#include "segfile.h"
#include "state.h"
#include "store.h"

struct node;
struct coll;
struct mv_colix;

/* One past the largest int64: no assignable id is left. */
#define MV_ID_TOP MV_STATE_ID_TOP
/* Ids reserved at a time in the state record (state.h). */
#define MV_ID_BLOCK (64 << 10)

/* Room for a storage path: user/collection-token/time-random.field.col */
#define MV_SPATH 400

/*
 * A growable byte buffer (pending data).  A mapped one is a bigmem.h
 * buffer: page-aligned (a flush writes it with direct I/O), on huge pages
 * when large, grown without copying, and filled from recently freed
 * memory; nbuf_touch makes it resident up to a length before it is
 * written there.
 */
struct nbuf {
	unsigned char *p;
	size_t len, cap;
	int mapped;
	size_t touched;		/* mapped: bytes resident */
};
int nbuf_reserve(struct nbuf *b, size_t more);
void nbuf_touch(struct nbuf *b, size_t end);
void nbuf_release(struct nbuf *b);

/* One scalar column of a segment, decoded. */
struct col {
	enum mv_ftype type;
	void *vals;		/* int64_t[] or double[]; string: bytes */
	uint64_t *off;		/* string: n offsets into vals */
	char path[MV_SPATH];
};

/* A flushed, immutable segment (its deletion bitmap excepted). */
struct seg {
	char path[MV_SPATH];		/* storage path of the .vec file */
	uint64_t seq, n;
	uint64_t size;		/* bytes in storage, all files */
	int64_t *ids;
	float *vecs;		/* searched: normalised for cosine */
	float *norms2;		/* l2: squared norms */
	const float *raw;	/* as inserted (== vecs unless cosine) */
	void *own;		/* block behind vecs, if any: malloc'ed, */
	struct mv_big big;	/* or this bigmem.h buffer (big.p == own) */
	void *map;		/* storage mapping behind raw, if any */
	int indexed;		/* covered by the collection's index; vecs
				 * then freed (raw maps the file) */
	int retired;		/* replaced by a compaction, all rows
				 * deleted: kept for the index's labels */
	uint8_t *deleted;	/* bitmap, NULL until a row is deleted */
	uint64_t ndeleted;
	int ncols;
	struct col *cols;
	uint64_t held;		/* bytes counted in node_held (size) */
	/*
	 * The time axis (asof.c): rowseq, when not NULL, the flush that
	 * inserted each row (a merged segment whose inputs differ), minseq
	 * the least of them; else every row is seq's.  dseq lists the rows
	 * deleted, each with the flush that deleted it (ndseq of them).
	 */
	uint64_t *rowseq;
	uint64_t minseq;
	struct segdel *dseq;
	size_t ndseq, dseqcap;
	/*
	 * A reload's copy of a segment the node held (load.c, seg_clone):
	 * ids, cols and rowseq are from's, borrowed (node_seg_free leaves
	 * them) until node_reload_adopt takes them and the vectors over.
	 */
	struct seg *from;
	/*
	 * The parts this segment lent to its copy at a reload's swap
	 * (SEG_LENT_*, node_seg_lend): still readable here, by a merge or
	 * build that took this segment before the swap, but the copy's to
	 * free; node_seg_free leaves them.
	 */
	int lent;
	/*
	 * Sorted indexes over numeric columns (colix.h), built the first
	 * time a filter bounds the column (asof.c, node_seg_match): six[i]
	 * for cols[i], six[MV_FIELDS_MAX] for ids.  Read and set atomically
	 * under c->lock shared (a search), built under a mutex of asof.c;
	 * counted in node_held and freed with the segment.
	 */
	_Atomic(struct mv_colix *) six[MV_FIELDS_MAX + 1];
};
#define SEG_LENT_ROWS 1		/* ids, rowseq, cols */
#define SEG_LENT_MAP 2		/* map (and raw into it) */
#define SEG_LENT_VECS 4		/* own/big, vecs, norms2 (raw if == vecs) */

/* A deleted row of a segment and the flush that deleted it. */
struct segdel {
	uint64_t row, seq;
};

/* A built index and the segments it covers, in label order. */
struct cindex {
	struct mv_index *ix;
	char spec[128];			/* index_factory string */
	char params[256];		/* "nprobe=32 ef=64" defaults */
	long nprobe, ef;
	char path[MV_SPATH];		/* storage path */
	char key[MV_SPATH + 64];	/* metadata key */
	size_t nsegs;
	struct seg **segs;
	uint64_t *base;			/* nsegs+1 label offsets */
	uint64_t held;			/* bytes counted in node_held */
};

enum { BUILD_NONE, BUILD_RUNNING, BUILD_DONE, BUILD_FAILED };

/* The state of the (at most one) background build of a collection. */
struct ibuild {
	int state;
	char spec[128];
	char params[256];
	double progress;		/* 0..1 */
	int64_t rows;
	time_t started, finished;
	struct mv_err err;		/* why it failed */
};

struct dellog {
	char path[MV_SPATH];
	uint64_t seq;
};

struct coll {
	atomic_int refs;
	char user[MV_NAME_MAX + 1];	/* namespace: /<user>/... */
	char name[MV_NAME_MAX + 1];
	uint32_t dim;
	enum mv_metric metric;
	int nfields;
	struct mv_field fields[MV_FIELDS_MAX];
	int64_t create_time;
	char token[17];			/* incarnation, in file names */
	pthread_rwlock_t lock;
	struct seg **segs;
	size_t nsegs;
	struct dellog *dels;
	size_t ndels;
	struct mv_idmap ids;		/* live id -> (seg, row) */
	uint64_t gen;			/* bumped when the id set changes */
	pthread_mutex_t scan_lock;	/* guards the sorted ids for SCAN */
	int64_t *scan_ids;
	size_t scan_n;
	uint64_t scan_gen;		/* gen scan_ids was made at, +1 */
	int64_t *asof_ids;		/* SCAN as of asof_seq: its ids, sorted */
	size_t asof_n;
	uint64_t asof_seq, asof_gen;	/* (scan_lock) made then, at gen */
	int64_t rows;			/* live rows */
	/*
	 * The next id to assign, as a wider integer: MV_ID_TOP (2^63) when
	 * none is left, since assigned ids never wrap; ids up to id_end are
	 * reserved in the state record.  Under id_lock.
	 */
	pthread_mutex_t id_lock;
	__int128 id_next, id_end;
	/*
	 * The state record as last written or read, the value its
	 * compare-and-swap compares with; state_lock (before id_lock)
	 * guards it and every write of the record.
	 */
	pthread_mutex_t state_lock;
	char *state;
	uint64_t next_seq;		/* under node.commit */
	int dropped;
	int compacting;			/* under build_lock */
	/*
	 * Readers of the segments without lock (a merge, an index build or
	 * drop: node_coll_reader_start) and the contents a follower's
	 * reload swapped out meanwhile, collections linked by next, freed
	 * when the last reader ends (node_coll_park).  Under park_lock, a
	 * leaf.
	 */
	pthread_mutex_t park_lock;
	int readers;
	struct coll *parked;
	struct cindex *index;		/* under lock; NULL: brute force */
	pthread_mutex_t build_lock;	/* guards build */
	pthread_cond_t build_cv;	/* broadcast when a build ends */
	struct ibuild build;
	struct coll *next;
};

/* Pending work of a batch on one collection. */
struct pcoll {
	struct coll *c;			/* holds a reference */
	size_t n;			/* rows */
	struct nbuf ids, vecs, dels;
	struct nbuf cols[MV_FIELDS_MAX];
	float *norms2;			/* l2: squared norms, made by the
					 * flush before node.commit */
	struct mv_idmap seen;		/* ids inserted in this batch, */
	int seen_stale;			/* unless only fresh ids came */
	int user_ids;			/* some ids were given */
	/* Vectors on their way to storage (stage.c); vw NULL until then. */
	struct mv_store_writer *vw;
	char base[200];			/* the segment's files' base name */
	size_t vqueued;			/* bytes of vecs handed over */
	uint32_t vcrc;			/* CRC-32C of the bytes written */
	uint64_t vnorm;			/* rows normalised (cosine) */
	int vjobs;			/* chunks in flight, under stage_lock */
	int vskip;			/* staging failed to start: do not */
	struct mv_err verr;		/* a failed write, for the flush */
	struct pcoll *next;
};

/*
 * Streaming a batch's vectors to storage as they arrive (stage.c).  The
 * caller holds the batch's lock.  stage_more after an INSERT; stage_wait
 * before vecs may move; stage_finish in a flush writes the rest and
 * commits the .vec file (pc->base names it); stage_abort discards.
 * (stage_finish and stage_abort are the engine's own: internal.h.)
 */
void stage_more(struct node *nd, struct pcoll *pc);
void stage_wait(struct pcoll *pc);

/*
 * The vector files a committed flush added (the units sync_level waits
 * for): a caller sets batch.flushed before node_flush_rev and frees the
 * paths with node_flushed_release.  lost: a path could not be kept (out
 * of memory), so the wait cannot know every unit and fails.
 */
struct node_flushed {
	char (*paths)[MV_SPATH];
	size_t n, cap;
	int lost;
};

/* Unflushed work of a connection or named session. */
struct batch {
	pthread_mutex_t lock;
	struct pcoll *colls;
	size_t bytes;
	int64_t rows, ndels;
	int64_t first_ms;		/* when it became non-empty (mono) */
	time_t last_used;		/* node_mono_s() */
	atomic_int refs;		/* its owner's, and the auto-flush's */
	char session[MV_NAME_MAX + 1];	/* "" for a connection's batch, or
					 * a session removed from the table */
	int conns;			/* sessions: pins (handoffs under way);
					 * a removed one is freed by the last */
	int held;			/* a connection's batch for a named
					 * session: no auto-flush, no staging */
	size_t acct;			/* bytes counted in node_pending */
	int autoflush_failed;
	char autoflush_err[MV_ERR_LEN];
	struct node_flushed *flushed;	/* see node_flushed */
	int64_t sync_rev;		/* automatic flushes' revision and */
	struct node_flushed sync_units;	/* units, not yet waited for */
	struct batch *next;		/* node's list (sessions, autoflush) */
};

struct node {
	struct mv_conf conf;
	struct mv_meta *meta;
	struct mv_store *store;
	char addr[256];
	pthread_mutex_t lock;
	pthread_mutex_t commit;
	struct coll *colls;		/* oldest first */
	struct batch *sessions;
	pthread_mutex_t slock;		/* guards sessions; taken alone or
					 * before a batch's mutex */
	pthread_mutex_t blist;		/* guards conn_batches */
	struct batch *conn_batches;	/* for auto-flush */
	atomic_int nconns;
	atomic_int shutting_down;
	atomic_int inflight;		/* flushes not yet answered */
	atomic_int serving;		/* requests being answered (mv-noded
					 * drains them at SIGTERM) */
	int cluster;			/* metadata in etcd, files shared */
	atomic_llong applied_rev;	/* metadata revision applied */
	uint32_t node_no;
	/*
	 * meta and store opened by the caller before node_open (two nodes
	 * in one process, in a test): node_close leaves them open.
	 */
	int meta_preset, store_preset;
	/*
	 * Set before node_open: it leaves the cluster's live key and
	 * threads to node_start (mv-noded: once it listens, so that no
	 * node is sent to one that cannot answer), from the revision it
	 * loaded (applied_rev).
	 */
	int start_later;
	/* The cluster (follow.c): follower and lease keeper threads. */
	pthread_t follower, keeper;
	int threads;
	atomic_int stop;
	atomic_int leaving;		/* node_cluster_leave: keeper ends */
	atomic_llong lease;		/* of the live and session keys */
	atomic_int meta_down;		/* reads answered without it (logged) */
	/*
	 * node_visible's reads of etcd's revision (follow.c): one read
	 * serves every request that arrived before it started.  Reads are
	 * numbered from 1, one at a time (under way while rev_started >
	 * rev_done, so rev_done is also how many were made); rev_last and
	 * rev_err are read rev_done's answer.
	 */
	pthread_mutex_t rev_mu;
	pthread_cond_t rev_cv;
	uint64_t rev_started, rev_done;
	int64_t rev_last;
	struct mv_err rev_err;
	int lockfd;			/* cluster: data_dir's LOCK */
	/*
	 * Cluster: which users are this cluster's (node_user_ours): user
	 * name -> true or false, as /<user>/config/<cluster_id> said.
	 */
	pthread_mutex_t users_lock;
	struct json_t *users;
	int64_t pruned;			/* history last pruned, monotonic ms */
	/* Files of flushes whose commit is unknown (follow.c). */
	pthread_mutex_t limbo_lock;
	struct limbo *limbo;
	struct place *place;		/* cluster: placement (place.c) */
};

extern struct node *the_node;

/*
 * Cluster: the value of a live key (/<user>/<cluster_id>_property/live/<N>,
 * catalog.c): the node's number and address; -1 if it holds neither.
 */
int node_live_parse(const void *val, size_t vlen, uint32_t *no, char *addr,
		    size_t cap);
int node_open(struct node *nd, struct mv_err *err);
/*
 * After node_open with start_later: in a cluster, put the live key and
 * start following the commit log (the others place units here from
 * then on); embedded, nothing.
 */
int node_start(struct node *nd, struct mv_err *err);
void node_close(struct node *nd);
/*
 * Cluster: revoke the lease (the live and session keys go at once: the
 * others stop placing units here and sending requests) and keep
 * following the commit log, so that requests in flight are answered;
 * node_cluster_stop then stops following (requests for revisions not
 * applied are refused from then on).  node_cluster_stop leaves first
 * when that was not done; node.commit must not be held.  Also done by
 * node_close; no-ops when embedded or already done.
 */
void node_cluster_leave(struct node *nd);
void node_cluster_stop(struct node *nd);

/*
 * Cluster mode: wait until this node has applied the metadata revision
 * current at the call (bounded by MV_VISIBLE_WAIT_MS, then MV_EAGAIN
 * "node N behind"), so that a read sees every flush that returned before
 * it started.  Metadata unreachable: 0 (answer from what the node holds).
 * Embedded: 0 at once.  Concurrent calls share etcd reads;
 * node_revision_reads counts the reads made (STAT io).
 */
#define MV_VISIBLE_WAIT_MS 5000
int node_visible(struct node *nd, struct mv_err *err);
uint64_t node_revision_reads(struct node *nd);
/* The same for a revision given (another node's search: fanout.c). */
int node_visible_at(struct node *nd, int64_t rev, struct mv_err *err);

/* Look up a collection and take a reference; NULL if absent. */
struct coll *node_coll_get(struct node *nd, const char *user,
			   const char *name);
/*
 * node_coll_get for a request: in a cluster, a collection not found
 * may have been created through another node; wait for the node to
 * apply the current revision (node_visible) and look again.
 */
struct coll *node_coll_find(struct node *nd, const char *user,
			    const char *name);
void coll_put(struct coll *c);
/*
 * Every collection of the node, however many, each with a reference:
 * a malloc'ed array of *n that the caller coll_put()s and frees; NULL
 * (and *n 0) when out of memory.
 */
struct coll **node_colls_ref(struct node *nd, size_t *n);
/* A flush on a collection's time axis (history.c). */
struct node_flushrec {
	uint64_t seq;			/* the flush's number */
	int64_t time_ms;		/* commit time, Unix ms */
	uint64_t inserted, deleted;	/* rows */
	int64_t rows;			/* live rows right after it */
};
/*
 * Call fn for each retained flush of c, oldest first: 0, fn's non-zero
 * return, or MV_E* (MV_EDATA naming a damaged record).
 */
int node_history(struct node *nd, struct coll *c,
		 int (*fn)(void *arg, const struct node_flushrec *r),
		 void *arg, struct mv_err *err);
/* Flushed segments of every collection, counted under their locks. */
size_t node_segment_count(struct node *nd);

int node_create(struct node *nd, const char *user, const char *name,
		uint32_t dim,
		enum mv_metric metric, const struct mv_field *f, int nf,
		int if_not_exists, int *existed, struct mv_err *err);
int node_drop(struct node *nd, const char *user, const char *name,
	      struct mv_err *err);

/*
 * Unflushed bytes of all batches (max_pending).  node_pending_take counts
 * bytes about to arrive (0, or -1 past the limit: nothing counted); a
 * batch keeps what it took in acct, given back when it is cleared.
 */
extern atomic_llong node_pending;
int node_pending_take(struct node *nd, size_t bytes);
void node_pending_give(size_t bytes);
/*
 * memory_limit: the node's memory is node_held (the bytes of the files of
 * its loaded segments and indexes, counted when one is attached and when
 * it is freed: struct seg's and struct cindex's held) plus node_pending.
 * node_insert_take is node_pending_take for an INSERT: also -2 when the
 * bytes would take that past memory_limit (nothing counted).
 * node_memory: the sum now.
 */
extern atomic_llong node_held;
int node_insert_take(struct node *nd, size_t bytes);
long long node_memory(void);
void node_held_add(long long bytes);

/* Batches. */
struct batch *batch_new(const char *session);
void batch_clear(struct batch *b);	/* drop pending work */
/*
 * Drop pending work and a reference (the caller must not hold b->lock);
 * the last one frees b.
 */
void batch_free(struct batch *b);
struct pcoll *batch_coll(struct batch *b, struct coll *c);
/*
 * Move src's pending work into dst (both locked), appending to dst's work
 * on the same collections: all of it, or on error (an id in both: DUPID;
 * out of memory) none, dst unchanged and src left as it was.
 */
int batch_merge(struct node *nd, struct batch *dst, struct batch *src,
		struct mv_err *err);

/*
 * Add n rows to b (locked by the caller).  ids NULL: assign; *first_id
 * gets the first.  vecs/ids/cols point at data already in the pcoll's
 * buffers' tails (appended by the reader); on error the tails are dropped.
 */
int node_insert_commit_tail(struct node *nd, struct batch *b,
			    struct pcoll *pc, size_t n, int has_ids,
			    int upsert, int has_fields, int64_t *first_id,
			    struct mv_err *err);
/* Commit b atomically; b is emptied either way. */
int node_flush(struct node *nd, struct batch *b, int64_t *inserted,
	       int64_t *deleted, struct mv_err *err);
/*
 * An automatic flush of b (locked by the caller; tick.c): node_flush;
 * in a cluster with sync_level, what it committed (revision and units)
 * is kept in b for node_autoflush_sync, so that no wait for replicas
 * holds up the ticker or b.  <0: the flush failed (nothing committed).
 */
int node_autoflush(struct node *nd, struct batch *b, int64_t *inserted,
		   int64_t *deleted, struct mv_err *err);
/*
 * Before a connection's next command (b not locked): wait for sync_level
 * on what b's automatic flushes committed since the last call, like a
 * FLUSH's wait (node_sync_wait).  0 when nothing is pending or the wait
 * is met; <0 with *err (MV_EAGAIN, "flush committed at revision R ...").
 */
int node_autoflush_sync(struct node *nd, struct batch *b, struct mv_err *err);
/* The same, and *rev the metadata revision it committed at (0: none). */
int node_flush_rev(struct node *nd, struct batch *b, int64_t *inserted,
		   int64_t *deleted, int64_t *rev, struct mv_err *err);
void node_flushed_release(struct node_flushed *f);
/*
 * sync_level (follow.c): in a cluster, once this node has applied rev
 * (its view of the live set is then rev's), wait until, for each of the
 * f->n new units, sync_level of its holders other than this node report
 * in LOAD loaded= rev or later (they applied it and hold its vectors);
 * with no unit (f NULL or empty: a flush of deletes only, or nothing left
 * to commit), until sync_level other live nodes do.  Asked with LOAD, at
 * most sync_timeout seconds; else MV_EAGAIN "flush committed at revision
 * R but only N of S replicas loaded it: ...".  0 at once outside a
 * cluster or with sync_level 0.  No lock held.
 */
int node_sync_wait(struct node *nd, int64_t rev, const struct node_flushed *f,
		   struct mv_err *err);
/*
 * LOAD's loaded=: the revision up to which this node has applied the
 * metadata and loaded the vectors of every unit it holds (place.c; the
 * applied revision outside a cluster).
 */
int64_t node_place_loaded(struct node *nd);

/*
 * Sessions (node.slock).  create 2: also, in a cluster, put the key of
 * a session found again (a node that relayed the connection here may
 * have put and deleted it meanwhile).
 */
struct batch *node_session_get(struct node *nd, const char *name, int create);
void node_session_remove(struct node *nd, struct batch *b);

/*
 * Exact search: ids/dist nq*k, ids MV_ID_NONE past the last hit.  Caller
 * holds no lock.
 */
int node_search(struct node *nd, struct coll *c, const float *q, size_t nq,
		size_t k, long nprobe, long ef, int64_t *ids, float *dist,
		struct mv_err *err);

/*
 * node_search restricted to the rows that match f (filter.h; NULL: all),
 * by the plan of docs/ARCHITECTURE.md "Filtered search": the k nearest
 * among the matching rows, min(k, matches) of them.
 */
struct mv_filter;
int node_search_filter(struct node *nd, struct coll *c, const float *q,
		       size_t nq, size_t k, long nprobe, long ef,
		       const struct mv_filter *f, int64_t *ids, float *dist,
		       struct mv_err *err);
/*
 * Search units (place.c): an index with the segments it covers, or a
 * segment no index covers, named by its file name under the collection.
 */
#define MV_UNIT_LEAF 128
struct node_units {
	char (*v)[MV_UNIT_LEAF];
	size_t n, cap;
	uint64_t seq;	/* todo: the last flush the search saw here */
};
/*
 * The asof a part of a search cut at flush cut (SEARCH ... cut=) answers
 * at: cut (waited for, 1 s at most, when c has yet to apply it), or 0
 * (now) when c's history does not reach back to it.
 */
uint64_t node_search_cut(struct node *nd, struct coll *c, uint64_t cut);
int node_units_add(struct node_units *u, const char *leaf);
int node_units_has(const struct node_units *u, const char *leaf);
void node_units_free(struct node_units *u);
/*
 * node_search_at over the units in want (NULL: every unit) that this
 * node serves now; their names into done (unless NULL), and those of want
 * (or all) that it does not serve into todo (unless NULL).
 */
int node_search_units(struct node *nd, struct coll *c, const float *q,
		      size_t nq, size_t k, long nprobe, long ef,
		      const struct mv_filter *f, uint64_t asof,
		      const struct node_units *want, struct node_units *done,
		      struct node_units *todo, int64_t *ids, float *dist,
		      struct mv_err *err);
/*
 * Cluster (fanout.c): the units named in units that this node holds but
 * does not serve yet (the placer loads them: a node left, an index
 * changed), searched once it serves them all, waiting up to ms, and
 * merged into ids and dist (a top-k of k per query); those are taken
 * out of units.  Those it holds by name but no longer has (merged away,
 * or an index replaced, since they were named) are moved to gone: their
 * rows are elsewhere now, the asker's to search again.  Left in units:
 * the units this node does not hold, or all the held ones when ms passed
 * first.
 */
#define MV_HELD_WAIT_MS 3000	/* another node's part: below fanout.c's
				 * FAN_WAIT_MS, which the asker waits */
int node_search_held(struct node *nd, struct coll *c,
		     struct node_units *units, int ms, const float *q,
		     size_t nq, size_t k, long nprobe, long ef,
		     const struct mv_filter *f, uint64_t asof, int64_t *ids,
		     float *dist, struct node_units *gone,
		     struct mv_err *err);
/*
 * Cluster (fanout.c): node_search_at over the whole collection, the
 * units this node does not serve asked of their live holders (filter:
 * the request's escaped text of f); embedded, node_search_filter.  A unit
 * no holder answered for: MV_EAGAIN naming the units missing.
 */
int node_search_all(struct node *nd, struct coll *c, const float *q,
		    size_t nq, size_t k, long nprobe, long ef,
		    const struct mv_filter *f, const char *filter,
		    uint64_t asof, int64_t *ids, float *dist,
		    struct mv_err *err);

/*
 * The rows of s that match f and are not deleted into bits ((n + 7) / 8
 * bytes, a deletion bitmap's order); their count.  Caller holds c->lock.
 */
size_t node_seg_match(const struct seg *s, const struct mv_filter *f,
		      uint8_t *bits);
/*
 * node_seg_match (and node_seg_match_at) find a filter's rows through a
 * sorted index of a column (seg.six) when the filter bounds the column
 * (mv_filter_bounds) to at most 1/NODE_SIX_NARROW of a segment of at
 * least NODE_SIX_MIN_ROWS rows; node_six_used counts those matches.
 */
#define NODE_SIX_MIN_ROWS 4096
#define NODE_SIX_NARROW 16
extern atomic_ullong node_six_used;
/* 1 when row of s matches f and is not deleted.  c->lock held. */
int node_row_matches(const struct seg *s, uint64_t row,
		     const struct mv_filter *f);
/* 1 when row of s matches f, deleted or not (as of a flush). */
int node_row_filter(const struct seg *s, uint64_t row,
		    const struct mv_filter *f);
/*
 * The ids of c's flushed live rows that match f, now: a malloc'ed *ids
 * of *n (caller frees).  Takes c->lock.
 */
int node_filter_ids(struct coll *c, const struct mv_filter *f, int64_t **ids,
		    size_t *n, struct mv_err *err);

/*
 * The time axis in reads (asof.c, DESIGN.md "The time axis"): asof is a
 * flush number, 0 for now.  node_asof_check: 0 when flush asof of c is
 * in the retained history, else MV_ESERVER saying how far back it goes
 * (or that there is no such flush yet).  node_asof_now: 0 when asof
 * names the current state (the latest flush or past it: today's path),
 * else asof; c->lock held.
 */
int node_asof_check(struct node *nd, struct coll *c, uint64_t asof,
		    struct mv_err *err);
uint64_t node_asof_now(const struct coll *c, uint64_t asof);
/* node_seg_match as the segment stood right after flush asof (0: now). */
size_t node_seg_match_at(const struct seg *s, const struct mv_filter *f,
			 uint64_t asof, uint8_t *bits);
/* node_search_filter as c stood right after flush asof (0: now). */
int node_search_at(struct node *nd, struct coll *c, const float *q,
		   size_t nq, size_t k, long nprobe, long ef,
		   const struct mv_filter *f, uint64_t asof, int64_t *ids,
		   float *dist, struct mv_err *err);
/*
 * Rows by id as of a flush (c->lock held shared throughout): the rows
 * deleted since, which the id map no longer holds, gathered once by
 * node_past_init (0 or MV_EINTERNAL); node_row_at finds id's row at
 * p->asof (1, or 0: none); node_past_release frees.
 */
struct node_past {
	uint64_t asof;
	struct mv_idmap dead;
};
int node_past_init(struct coll *c, uint64_t asof, struct node_past *p);
int node_row_at(struct coll *c, const struct node_past *p, int64_t id,
		struct seg **s, uint64_t *row);
void node_past_release(struct node_past *p);
/*
 * The ids of the rows of c visible right after flush asof that match f
 * (NULL: all), sorted: a malloc'ed *ids of *n.  Takes c->lock.
 */
int node_asof_ids(struct coll *c, uint64_t asof, const struct mv_filter *f,
		  int64_t **ids, size_t *n, struct mv_err *err);
/*
 * SCAN as of flush asof (c->scan_lock held): c->asof_ids, the ids visible
 * then (c->asof_n, sorted), made by the first page of an export and kept
 * for the next ones while asof and c->gen stay; node_asof_scan_done frees
 * them (the last page).  0 or MV_EINTERNAL.  Takes c->lock.
 */
int node_asof_scan_ids(struct coll *c, uint64_t asof, struct mv_err *err);
void node_asof_scan_done(struct coll *c);
/*
 * One page of SCAN as of flush asof: up to limit ids visible then (and
 * matching f, NULL: all) greater than after, in order, from c->asof_ids
 * (takes c->scan_lock and c->lock): a malloc'ed *page of *n.  0 or
 * MV_EINTERNAL.
 */
int node_asof_scan_page(struct coll *c, uint64_t asof, int64_t after,
			uint64_t limit, const struct mv_filter *f,
			int64_t **page, size_t *n, struct mv_err *err);
/* The first index of ids (n, sorted) whose id is greater than after. */
size_t node_ids_after(const int64_t *ids, size_t n, int64_t after);

/*
 * Raw vectors of a segment as inserted into *raw: those in memory, or the
 * file mapped and checked whole (cosine, covered by an index, another
 * node's unit).  0, or MV_E* naming the file (damage is MV_EIO).
 */
int node_seg_raw(struct node *nd, struct seg *s, const float **raw,
		 struct mv_err *err);

/* Field values of the row of id as one tab-separated line into out. */
int coll_fields_text(struct coll *c, struct seg *s, uint64_t row,
		     const int *which, int nwhich, struct nbuf *out);

/* Indexes (indexer.c). */
int node_index_start(struct node *nd, struct coll *c, const char *spec,
		     const char *params, struct mv_err *err);
int node_index_drop(struct node *nd, struct coll *c, struct mv_err *err);
int node_index_set(struct node *nd, struct coll *c, const char *params,
		   struct mv_err *err);
/*
 * The state of c's last build as INDEXSTATUS words it, without its
 * error; *failed (code, kind, message) says why a failed one failed, and
 * has code 0 otherwise.
 */
void node_index_status(struct coll *c, char *out, size_t cap,
		       struct mv_err *failed);
/* Wait at most ms milliseconds for a build under way to end. */
void node_index_wait(struct coll *c, int ms);
/*
 * Clocks (util.c): CLOCK_MONOTONIC, for intervals (TTL, auto-flush): no
 * wall-clock jumps.
 */
int64_t node_mono_ms(void);
/*
 * The CLOCK_REALTIME time ms milliseconds from now, as
 * pthread_cond_timedwait takes it.
 */
void node_deadline(struct timespec *ts, int64_t ms);
time_t node_mono_s(void);
/*
 * Tests only: with the environment variable var set to N, pause N ms,
 * logging the start and the end (util.c); unset, nothing.
 */
void node_test_pause(const char *var);
/*
 * Walk n string records (u32 length + bytes) at p: the bytes they take,
 * or -1 if len is too short; off, when not NULL, gets each one's offset.
 */
long node_string_block(const unsigned char *p, size_t len, uint64_t n,
		       uint64_t *off);

/*
 * Housekeeping (compact.c): merge small unindexed segments and rewrite
 * those with many deleted rows.  force: merge even two small segments.
 * *merged gets the number of input segments replaced.
 */
int node_compact(struct node *nd, struct coll *c, int force, int *merged,
		 struct mv_err *err);
/*
 * The background pass, every few seconds: merges (unless auto_compact is
 * false), and once a minute flush records past history_retention pruned.
 */
void node_housekeep(struct node *nd);

/* Background work: auto-flush and session expiry. */
void node_tick(struct node *nd);

#endif
