/*
 * internal.h - what the engine's files (libmv/engine/) share and nothing
 * outside them calls: key builders, JSON makers, constructors.  The
 * public API, with the structures and the locking contract, is engine.h.
 */
#ifndef MV_ENGINE_INTERNAL_H
#define MV_ENGINE_INTERNAL_H

#include "engine.h"

/*
 * catalog.c: the metadata keys and values.  The keys, all built here:
 *   /user_list                     JSON array of the users
 *   /<user>/collection_list        JSON array of the user's collections
 *   /<user>/config/<cluster_id>    the cluster's configuration
 *   /<user>/<coll>/schema          a collection's schema
 *   /<user>/<coll>/state           its ids and sequence (state.h)
 *   /<user>/<coll>/data/<file>     one per segment, deletion log, index
 */
#define KEY_USER_LIST "/user_list"
/* "/<user>/<coll>/<leaf>", the key of one of a collection's records. */
void key_coll(char *out, size_t cap, const char *user, const char *coll,
	      const char *leaf);
/* "/<user>/<coll>/data/<leaf>", the record of one of its files. */
void key_data(char *out, size_t cap, const char *user, const char *coll,
	      const char *leaf);
/* "/<user>/<leaf>": leaf "collection_list", or "" for the prefix. */
void key_user(char *out, size_t cap, const char *user, const char *leaf);
/* "/<user>/config/<cluster_id>". */
void key_config(char *out, size_t cap, const char *user,
		const char *cluster_id);
/* The JSON of /<user>/config/<cluster_id>: this node's settings. */
void node_config_json(const struct node *nd, char *out, size_t cap);
/*
 * Whether user is this cluster's: 1 in embedded mode, or when
 * /<user>/config/<cluster_id> exists (a cluster writes it with the user's
 * first collection, so that clusters sharing one etcd keep to their own
 * users); 0 if not; MV_E* if etcd could not say.  Answers are kept.
 */
int node_user_ours(struct node *nd, const char *user, struct mv_err *err);
/*
 * Start-up: put this node's /<user>/config/<cluster_id>; in a cluster
 * first check that no other cluster holds the user (its config key
 * created earlier): then MV_ECONFIG naming that cluster, nothing written.
 */
int node_user_claim(struct node *nd, struct mv_err *err);
/*
 * A CREATE for a user new to this cluster: claim it as node_user_claim
 * does (the oldest config key of the user wins a race between clusters);
 * MV_EPERM naming the cluster that holds it.  0 at once off a cluster.
 */
int node_user_take(struct node *nd, const char *user, struct mv_err *err);
/* If key is /<user>/config/<our cluster_id>, user is ours from now on. */
void node_user_seen(struct node *nd, const char *key);
/* history.c: "/<user>/<coll>/flush/<seq>", a flush's record on the time
 * axis, and its JSON (malloc'ed; NULL: out of memory). */
void key_flush(char *out, size_t cap, const char *user, const char *coll,
	       uint64_t seq);
char *node_flush_json(int64_t time_ms, uint64_t inserted, uint64_t deleted,
		      int64_t rows);
/* Delete c's flush records older than history_retention (logged). */
void node_history_prune(struct node *nd, struct coll *c, int64_t now_ms);
/* The JSON of a collection's schema record. */
char *schema_json(const struct coll *c);
/* The JSON of /user_list with user added, or NULL if it is there. */
char *user_list_with(struct node *nd, const char *user);

/* coll.c: a new collection in memory, one reference held. */
struct coll *coll_new(const char *user, const char *name, uint32_t dim,
		      enum mv_metric metric, const struct mv_field *f, int nf);

/*
 * coll.c: readers of c's segments without c->lock (a merge, an index
 * build or drop) call node_coll_reader_start before their snapshot of
 * c->segs and node_coll_reader_end once done reading.  A follower's
 * reload that swapped old's contents (segments and index, linked by
 * nothing else) out of c hands them to node_coll_park: freed now, or,
 * while a reader runs, once the last one ends.  None of them waits for
 * a reader (c->park_lock, a leaf).
 */
void node_coll_reader_start(struct coll *c);
void node_coll_reader_end(struct coll *c);
void node_coll_park(struct coll *c, struct coll *old);

/* coll.c: past the largest of n ids given at insert or found at load. */
void bump_next_id(struct coll *c, const int64_t *ids, size_t n);

/* util.c */
int64_t node_now_ms(void);
void node_random_hex(char *out, size_t bytes);
void node_normalise(float *v, size_t n, uint32_t dim);
/* Merge one hit into a sorted top-k list (ri/rd, k long). */
/* n empty top-k slots: no id, the worst distance of the metric. */
void node_topk_clear(int l2, int64_t *ids, float *dist, size_t n);
void node_merge_hit(int l2, int64_t *ri, float *rd, size_t k, int64_t id,
		    float d);

/* catalog.c: the JSON of /<user>/collection_list (node.lock held). */
char *node_collection_list(struct node *nd, const char *user,
			   const char *skip, const struct coll *add);
char *node_data_json(const char *type, uint64_t size, uint32_t node_no,
		     uint64_t seq, uint64_t rows, const char *column,
		     const char *vector_file);
/* The value of an index's key (ci covering its segments, size bytes). */
char *index_json(const struct cindex *ci, uint64_t size, uint32_t node_no,
		 int64_t rows);
/*
 * The collection list with spec as c's index column (node.lock held): what
 * the list will be once an index change commits.
 */
char *list_with_index(struct node *nd, struct coll *c, const char *spec);
/*
 * The value of c's index key with the inputs of a compaction that the
 * index covers added to its "retired" files (node.commit held).
 */
char *index_retire_json(struct node *nd, struct coll *c, struct seg **in,
			size_t nin, struct mv_err *err);

/* segment.c */
/*
 * Free s->own, however it was allocated; keep: its memory may serve the
 * next insert (bigmem.h's pool) rather than go back to the system.
 */
void node_seg_free_own(struct seg *s, int keep);
/*
 * A fresh base name for a segment's files: "user/name-token/ms-random",
 * in a cluster "user/name-token/n<N>-ms-random" (N: the node's number,
 * so that a node's start-up sweep knows its own files).
 */
void node_seg_base(const struct node *nd, const struct coll *c, char *out,
		   size_t cap);
void node_seg_free(struct seg *s);
/*
 * A reload's swap (node_reload_adopt, c->lock held exclusively): copy s
 * of o takes over o's ids, columns and rowseq, its file mapping, its
 * vectors unless s is covered by an index now, and its sorted indexes
 * (moved); o keeps pointing at the rest, marked lent (o->lent), for a
 * merge or build that still reads o, and stops counting in node_held
 * what s counts now.
 */
void node_seg_lend(struct seg *o, struct seg *s);
/* Count s (attached to a collection) in node_held, once. */
void node_seg_held(struct seg *s);
int node_seg_prepare(struct coll *c, struct seg *s, uint64_t done,
		     struct mv_err *err);
int node_seg_set_deleted(struct seg *s, uint64_t row);
/*
 * asof.c: delete row of s at flush seq (its bit and its seq in s->dseq);
 * 0, or MV_EINTERNAL (out of memory: nothing changed).  node_seg_ins is
 * the flush that inserted a row.
 */
int node_seg_set_deleted_at(struct seg *s, uint64_t row, uint64_t seq);
/*
 * Room for more rows of s to be marked deleted (its bitmap, and more
 * deletion seqs) without allocating: a flush reserves it before its
 * commit, so that marking what it deleted cannot fail after (c->lock held
 * exclusively).  0 or MV_EINTERNAL.
 */
int node_seg_reserve_deleted(struct seg *s, size_t more);
uint64_t node_seg_ins(const struct seg *s, uint64_t row);
int node_seg_is_deleted(const struct seg *s, uint64_t row);
/* Write one segment file (segfile.h) to storage whole. */
int node_put_file(struct node *nd, const char *path, enum mv_segkind kind,
		  uint32_t aux, uint64_t n, const void *a, size_t alen,
		  const void *bp, size_t blen, uint64_t *size,
		  struct mv_err *err);
/* Decode the column block of a pending batch into a segment column. */
int node_seg_col_from(struct col *col, enum mv_ftype t, struct nbuf *nb,
		      uint64_t n);

/*
 * load.c: reading what the metadata names.  node_coll_load reads a
 * collection whole into a new struct coll (one reference, not linked
 * into the node): 0, 1 if it has no schema key, or MV_E*; startup: a
 * missing state record is written afresh (else an error).  A file of its
 * list that a merge deleted meanwhile (node_gone_since) makes it read
 * the list again, a few times, then MV_EAGAIN.
 *
 * A reload (follow.c) reads in two steps.  node_reload_read, with no
 * lock held, reads from the store only what the collection c the node
 * holds lacks: the vector files the metadata names that c has not, the
 * delete logs new to c or newer than one of those files, a new index the
 * node holds.  node_coll_load with that reuse r, under node.commit, then
 * builds the collection from the metadata, each segment c holds a copy
 * (seg_clone) that borrows its ids and columns, with its deletions; it
 * reads nothing from the store, and returns NODE_RELOAD_AGAIN when the
 * metadata names something the read-ahead has not (read again).  Under
 * c's write lock node_reload_adopt then moves the borrowed parts, the
 * vectors, mappings and the FAISS index of c into the new collection,
 * which is swapped in.  node_reuse_release frees what was not used.
 */
#define NODE_RELOAD_AGAIN 2
/*
 * rc of a read of path, a file of c's list: a file the store no longer
 * has (MV_ENOINPUT) that the metadata no longer names either was deleted
 * after the list was read (a merge deletes its inputs, a new index its
 * predecessor): NODE_RELOAD_AGAIN, to read the list again.  One still
 * named is damage: rc as it was, and so is any other rc.
 */
int node_gone_since(struct node *nd, const struct coll *c,
		    const char *path, int rc, struct mv_err *err);
struct reuse {
	struct coll *c;			/* held now (a reference) */
	struct seg **segs;		/* vector files read ahead */
	size_t nsegs;
	struct predel {			/* delete logs read ahead */
		char path[MV_SPATH];
		int64_t *ids;
		size_t n;
	} *dels;
	size_t ndels;
	struct seg **fills;		/* the vectors of segments held
					 * without them (an index covered
					 * them) that no index covers now */
	size_t nfills;
	char ixpath[MV_SPATH];		/* an index read ahead ("": none) */
	struct mv_index *ix;
	uint64_t ixlen;
	uint64_t newmin;		/* node_coll_load's: least seq of
					 * the new segments so far (read
					 * ahead, or read under fill_missing):
					 * a delete log after it is applied */
	int fill_missing;		/* node_coll_load reads what the
					 * read-ahead lacks (else
					 * NODE_RELOAD_AGAIN) */
};
int node_coll_load(struct node *nd, const char *user, const char *name,
		   int startup, struct reuse *r, struct coll **out,
		   struct mv_err *err);
int node_reload_read(struct node *nd, struct coll *c, struct reuse *r,
		     struct mv_err *err);
void node_reload_adopt(struct coll *c, struct coll *n2);
void node_reuse_release(struct reuse *r);
/*
 * The store path of c's file leaf ("USER/NAME-TOKEN/LEAF") into out, of
 * MV_SPATH bytes (coll.c).
 */
void node_coll_path(const struct coll *c, const char *leaf, char *out);
/*
 * c's segment whose .vec file is path (coll.c); 1 if c applied the
 * delete log at path (c->lock held, or node.commit).
 */
struct seg *node_coll_seg(struct coll *c, const char *path);
int node_coll_del(const struct coll *c, const char *path);
/*
 * Read the segment whose .vec file is path (and its columns); val is its
 * data key's value (seq, and size and rows for a range read, load.c).
 */
struct json_t;
int node_seg_read(struct node *nd, struct coll *c, const char *path,
		  const struct json_t *val, struct seg **out,
		  struct mv_err *err);
/* Add s to c's segments and id map (c->lock held exclusively). */
int node_seg_attach(struct coll *c, struct seg *s, struct mv_err *err);
/* Read a deletion log's ids (*ids malloc'ed). */
int node_del_read(struct node *nd, const char *path, int64_t **ids,
		  size_t *n, struct mv_err *err);
/* Apply a deletion log to c and list it (c->lock held exclusively). */
int node_del_apply(struct coll *c, const char *path, uint64_t seq,
		   const int64_t *d, size_t n, struct mv_err *err);

/*
 * follow.c: the cluster.  node_cluster_start (in node_open after the
 * load, or in node_start once mv-noded listens) joins the cluster and
 * starts the follower and the lease keeper; node_cluster_stop ends
 * them.  node_wait_applied waits until the node
 * has applied revision rev (bounded by ms: then MV_EAGAIN "node N
 * behind").
 */
int node_cluster_start(struct node *nd, int64_t rev, struct mv_err *err);
/* A committed flush's new vector file, for the sync wait (out of memory:
 * left out; with none listed the wait asks the other live nodes). */
void node_flushed_add(struct node_flushed *f, const char *path);
int node_wait_applied(struct node *nd, int64_t rev, int ms,
		      struct mv_err *err);
/*
 * The n files at paths, written for a metadata transaction that failed,
 * key one it puts: removed at once when the transaction certainly did not
 * apply (embedded metadata, or etcd answers that key is absent), else
 * kept in limbo (follow.c): an answer lost on the way back may hide
 * a commit that names them, and deleting them then would lose its data.
 * what says whose files they are, for the log.
 */
void node_txn_files(struct node *nd, const char *what, const char *key,
		    char (*paths)[MV_SPATH], size_t n);
struct limbo {
	char what[32];			/* "a flush", "a merge"... */
	char key[MV_SPATH + 200];
	char (*paths)[MV_SPATH];
	size_t n;
	struct limbo *next;
};
/* The node's number in the cluster (node.json, or max+1 by CAS). */
int node_cluster_join(struct node *nd, struct mv_err *err);
/* Put (held) or delete a named session's key; cluster mode only. */
void node_cluster_session(struct node *nd, const char *name, int held);
/* Put every named session's key again (a new lease). */
void node_sessions_reput(struct node *nd);

/* stage.c: see engine.h. */
int stage_finish(struct pcoll *pc, uint64_t *size, struct mv_err *err);
/*
 * End a segment file streamed to w in segfile.h's tail layout: append
 * last (the rest of block B, if any), then block A (a, alen) and the
 * trailer for B's blen bytes summed to crc_b, and commit (*size: the
 * file's bytes); on any failure abort w.  w is gone either way.
 */
int stage_end(struct mv_store_writer *w, enum mv_segkind kind, uint32_t aux,
	      uint64_t n, const void *a, size_t alen, const struct iovec *last,
	      uint64_t blen, uint32_t crc_b, uint64_t *size, struct mv_err *err);
void stage_abort(struct pcoll *pc);

/* coll.c */
void cindex_free(struct cindex *ci);

/* indexer.c */
/*
 * The index named by key/val of collection c (start-up, a reload).  With
 * r (a reload, load.c): the index the node holds is not read again (its
 * FAISS index is adopted at the swap), a new one must be r's read ahead,
 * else NODE_RELOAD_AGAIN.
 */
struct reuse;
int node_index_load(struct node *nd, struct coll *c, const char *dir,
		    const char *leaf, const void *val, size_t vlen,
		    struct reuse *r, struct mv_err *err);
/*
 * Read the index file at path (mapped and checked whole) into *ix, *size
 * its bytes; total: the labels it must hold, or UINT64_MAX (unknown yet).
 */
int node_index_fetch(struct node *nd, const char *path, uint64_t total,
		     struct mv_index **ix, uint64_t *size, struct mv_err *err);
/* Which of an index's covered segments holds label l (binary search). */
size_t node_label_seg(const struct cindex *ci, uint64_t l);
/* Search the index part of c (lock held shared); merge into ids/dist. */
int node_index_search(struct coll *c, const float *q, size_t nq, size_t k,
		      long nprobe, long ef, int64_t *ids, float *dist,
		      struct mv_err *err);

/*
 * place.c: placement in a cluster.  A unit (an index with the segments
 * it covers, or a segment no index covers) is held by the 1 +
 * num_replicas live nodes with the highest mv_rank_hash(its storage
 * path, node number); every node computes the same from the live keys.
 */
#define PLACE_NODES_MAX 64
struct place_node {
	uint32_t no;
	char addr[128];
	int64_t suspect_until;		/* mono ms: did not answer a search */
};
/* A kept connection to another node for fan-out search (fanout.c). */
struct fan_conn {
	struct fan_conn *next;
	uint32_t no;
	char addr[128];
	char user[MV_NAME_MAX + 1];	/* the USER it was last given */
	int fd;
};
struct place {
	pthread_mutex_t lock;		/* a leaf: taken last */
	pthread_cond_t cv;
	struct place_node live[PLACE_NODES_MAX];
	size_t nlive;
	uint64_t gen;			/* bumped when the live set changes */
	int kick;			/* the placer to pass at once */
	pthread_t thread;
	int running;
	struct fan_conn *pool;		/* under lock */
	int warned;			/* placer: a failed load logged */
	/*
	 * What LOAD's loaded= says (node_place_loaded): the placer's last
	 * pass that left nothing held unloaded ran at live set clean_gen,
	 * after the node had applied revision loaded_rev.
	 */
	uint64_t clean_gen;
	int64_t loaded_rev;
};
/* The want highest of n nodes for unit, best first, into out: how many. */
size_t node_place_pick(const char *unit, const uint32_t *nos, size_t n,
		       size_t want, uint32_t *out);
/* Cluster: the live set from the live keys, this node in it (before the
 * load, so that it loads only what it holds). */
int node_place_init(struct node *nd, struct mv_err *err);
/* 1 when key is another node's live key (its number in *no), else 0
 * (this node's own stays live for itself). */
int node_place_live_key(struct node *nd, const char *key, uint32_t *no);
/* A watched key's PUT or DEL: a live key changes the live set. */
void node_place_live(struct node *nd, const char *key, const char *val,
		     size_t vlen, int put);
/* Whether this node holds unit (1 embedded). */
int node_place_held(struct node *nd, const char *unit);
/* The live holders of unit, best first, those marked suspect last. */
size_t node_place_holders(struct node *nd, const char *unit,
			  struct place_node *out);
/* Every live node but this one, into out (PLACE_NODES_MAX): how many. */
size_t node_place_others(struct node *nd, struct place_node *out);
/* The live set's generation: it changes whenever the live set does. */
uint64_t node_place_gen(struct node *nd);
/* Whether this node runs c's background merges (1 embedded). */
int node_place_merger(struct node *nd, const struct coll *c);
/* Node no did not answer: ask it last for ms (0: answered again). */
void node_place_suspect(struct node *nd, uint32_t no, int ms);
/* Free s's vectors unless this node holds s (c->lock exclusive, or s
 * not yet shared). */
void node_place_drop_vecs(struct node *nd, struct seg *s);
/*
 * The searched vectors of tmp->path (n rows) read from storage into tmp:
 * own, vecs and norms2 (a cosine file's normalised), nothing else.
 */
int node_seg_vecs_read(struct node *nd, struct coll *c, struct seg *tmp,
		       uint64_t n, struct mv_err *err);
/* The placer thread (node_cluster_start / node_cluster_stop). */
int node_place_start(struct node *nd, struct mv_err *err);
void node_place_stop(struct node *nd);
void node_place_free(struct node *nd);

#endif
