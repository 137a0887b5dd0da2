/*
 * verbs_write.c - the verbs that change data: INSERT, DELETE, FLUSH,
 * SESSION, HANDOFF, COMMIT, ABORT, SESSIONS (docs/PROTOCOL.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "conn.h"
#include "filter.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "vcheck.h"

/* Split a received column block into the pending columns of pc. */
static int take_fields(struct conn *cn, struct coll *c, struct pcoll *pc,
		       const unsigned char *p, size_t len, size_t n,
		       size_t *saved)
{
	size_t pos = 0;

	for (int f = 0; f < c->nfields; f++) {
		size_t start = pos;

		if (c->fields[f].type != MV_STRING) {
			if (len - pos < n * 8)
				goto short_block;
			pos += n * 8;
		} else {
			long used = node_string_block(p + pos, len - pos, n,
						      NULL);
			if (used < 0)
				goto short_block;
			pos += (size_t)used;
		}
		if (nbuf_reserve(&pc->cols[f], pos - start) < 0)
			return reply(cn, "ERR INTERNAL out of memory"), 1;
		memcpy(pc->cols[f].p + pc->cols[f].len, p + start, pos - start);
		pc->cols[f].len += pos - start;
	}
	if (pos != len)
		goto short_block;
	return 0;
short_block:
	for (int f = 0; f < c->nfields; f++)
		pc->cols[f].len = saved[f];
	return reply(cn, "ERR BADDATA field block does not match the %zu rows",
		     n), 1;
}

/*
 * The start of a payload's way into the connection's batch, shared by
 * INSERT and DELETE: a failed automatic flush, the node's pending-bytes
 * limit and memory are checked, the payload skipped and the reply sent
 * on a refusal (then *rc holds the handler's return and NULL comes back,
 * c released).  Otherwise the batch comes back locked and *pc is its
 * part for c.  over not NULL (an INSERT): memory_limit is checked too;
 * past it *over is set, NULL comes back with c released and nothing read
 * or sent (reduce_insert decides).
 */
static struct batch *payload_batch(struct conn *cn, struct coll *c,
				   uint64_t bytes, struct pcoll **pc, int *rc,
				   int *over)
{
	struct batch *b;
	int took;

	if (check_autoflush(cn)) {
		coll_put(c);
		*rc = skip_payload(cn, bytes);
		return NULL;
	}
	took = over ? node_insert_take(cn->nd, bytes) : pending_take(cn, bytes);
	if (took == -2) {
		coll_put(c);
		*over = 1;
		return NULL;
	}
	if (took < 0) {
		coll_put(c);
		*rc = skip_payload(cn, bytes) < 0 ? -1 : pending_refuse(cn, bytes);
		return NULL;
	}
	b = cur_batch(cn);
	pthread_mutex_lock(&b->lock);
	*pc = batch_coll(b, c);
	if (!*pc) {
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		skip_payload(cn, bytes);
		*rc = reply(cn, "ERR INTERNAL out of memory");
		return NULL;
	}
	return b;
}

int cmd_insert(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	uint64_t n, bytes;
	int has_ids = 0, upsert = 0, has_fields = 0, rc, over = 0;
	struct coll *c;
	struct batch *b;
	struct pcoll *pc;
	size_t need, vbytes, saved_ids, saved_vecs, saved_cols[MV_FIELDS_MAX];
	unsigned char *fblock = NULL;
	size_t flen = 0;
	int64_t first_id = -1;
	struct mv_err e = { 0 };

	(void)argc;
	if (parse_u64(argv[2], PAYLOAD_MAX, &n) < 0 ||
	    parse_u64(argv[4], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;	/* the payload size is unknown: cannot resync */
		return proto_err(cn, "usage: INSERT <name> <n> <flags> <bytes>");
	}
	if (strcmp(argv[3], "-")) {
		char *save = NULL, *f;
		for (f = strtok_r(argv[3], ",", &save); f;
		     f = strtok_r(NULL, ",", &save)) {
			if (!strcmp(f, "ids"))
				has_ids = 1;
			else if (!strcmp(f, "upsert"))
				upsert = 1;
			else if (!strcmp(f, "fields"))
				has_fields = 1;
			else {
				skip_payload(cn, bytes);
				return proto_err(cn, "unknown INSERT flag");
			}
		}
	}
	c = node_coll_find(nd, cn->user, argv[1]);
	if (!c) {
		if (skip_payload(cn, bytes) < 0)
			return -1;
		return unknown_coll(cn, argv[1]);
	}
	vbytes = n * c->dim * sizeof(float);
	need = vbytes + (has_ids ? n * 8 : 0);
	if (bytes < need || (!has_fields && bytes != need) ||
	    (has_fields && !c->nfields)) {
		coll_put(c);
		if (skip_payload(cn, bytes) < 0)
			return -1;
		if (has_fields && !c->nfields)
			return reply(cn, "ERR BADDATA collection '%s' has no fields",
				     argv[1]);
		return reply(cn, "ERR BADDIM payload of %" PRIu64 " bytes does "
			     "not hold %" PRIu64 " vectors of dimension %u",
			     bytes, n, c->dim);
	}
	if (!(b = payload_batch(cn, c, bytes, &pc, &rc, &over))) {
		if (over) {
			char fl[32];

			snprintf(fl, sizeof(fl), "%s%s%s%s%s",
				 has_ids ? "ids" : "",
				 has_ids && upsert ? "," : "",
				 upsert ? "upsert" : "",
				 (has_ids || upsert) && has_fields ? "," : "",
				 has_fields ? "fields" : "");
			return reduce_insert(cn, argv[1], n, fl[0] ? fl : "-",
					     bytes);
		}
		return rc;
	}
	saved_ids = pc->ids.len;
	saved_vecs = pc->vecs.len;
	for (int f = 0; f < c->nfields; f++)
		saved_cols[f] = pc->cols[f].len;
	/* Memory is taken as the bytes arrive, not as the header claims. */
	rc = 0;
	if (has_ids)
		rc = read_into(cn, pc, &pc->ids, n * 8);
	if (rc == 0)
		rc = read_into(cn, pc, &pc->vecs, vbytes);
	if (rc == 0 && has_fields) {
		flen = bytes - need;
		fblock = malloc(flen ? flen : 1);
		rc = fblock ? read_payload(cn, fblock, flen) : -1;
	}
	if (rc < 0) {
		/* Client gone mid-payload: nothing of this request stays. */
		pc->ids.len = saved_ids;
		pc->vecs.len = saved_vecs;
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		free(fblock);
		coll_put(c);
		if (rc == -2) {
			log_warnx("%s: out of memory for an INSERT of %" PRIu64
				  " bytes: connection dropped", cn->peer, bytes);
			reply(cn, "ERR INTERNAL out of memory");
		}
		return -1;
	}
	if (has_fields && take_fields(cn, c, pc, fblock, flen, n, saved_cols)) {
		pc->ids.len = saved_ids;
		pc->vecs.len = saved_vecs;
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		free(fblock);
		coll_put(c);
		return 0;
	}
	free(fblock);
	rc = node_insert_commit_tail(nd, b, pc, n, has_ids, upsert, has_fields,
				     &first_id, &e);
	if (rc < 0) {
		pc->ids.len = saved_ids;
		pc->vecs.len = saved_vecs;
		for (int f = 0; f < c->nfields; f++)
			pc->cols[f].len = saved_cols[f];
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		return reply_err(cn, &e);
	}
	b->acct += bytes;
	b->last_used = node_mono_s();
	if (!b->held)
		stage_more(nd, pc);
	if (nd->conf.auto_flush && !b->held &&
	    b->bytes >= (size_t)nd->conf.flush_limit) {
		int64_t ins, del;
		int frc;

		/* In flight like a FLUSH: shutdown waits for it. */
		atomic_fetch_add(&nd->inflight, 1);
		node_test_pause("MV_TEST_PAUSE_AUTOFLUSH");
		frc = node_autoflush(nd, b, &ins, &del, &e);
		atomic_fetch_sub(&nd->inflight, 1);
		if (frc < 0) {
			pthread_mutex_unlock(&b->lock);
			coll_put(c);
			log_warnx("automatic flush failed: %s", e.msg);
			return reply(cn, "ERR IO automatic flush failed: %s",
				     e.msg);
		}
	}
	pthread_mutex_unlock(&b->lock);
	coll_put(c);
	if (has_ids)
		return reply(cn, "OK n=%" PRIu64, n);
	return reply(cn, "OK n=%" PRIu64 " first_id=%" PRId64, n, first_id);
}

/*
 * DELETE <name> filter=<expr>: the ids of the flushed rows that match, as
 * of now, join the pending deletes like the ids of a DELETE payload.
 */
static int delete_filter(struct conn *cn, char *name, char *arg)
{
	struct coll *c;
	struct mv_filter *f;
	struct mv_err e = { 0 };
	struct batch *b;
	struct pcoll *pc;
	int64_t *ids;
	size_t n, bytes;
	int rc;

	if (strncmp(arg, "filter=", 7))
		return proto_err(cn, "usage: DELETE <name> <n> <bytes> | "
				 "DELETE <name> filter=<expr>");
	if (visible(cn, 0, &rc) < 0)
		return rc;
	if (!(c = node_coll_find(cn->nd, cn->user, name)))
		return unknown_coll(cn, name);
	if (!(f = req_filter(cn, c, arg + 7, &rc))) {
		coll_put(c);
		return rc;
	}
	rc = node_filter_ids(c, f, &ids, &n, &e);
	mv_filter_free(f);
	if (rc < 0) {
		coll_put(c);
		return reply_err(cn, &e);
	}
	bytes = n * sizeof(*ids);
	/* As payload_batch, with no payload to skip on a refusal. */
	if (pending_take(cn, bytes) < 0) {
		coll_put(c);
		free(ids);
		return pending_refuse(cn, bytes);
	}
	if (!(b = payload_batch(cn, c, 0, &pc, &rc, NULL))) {
		node_pending_give(bytes);
		free(ids);
		return rc;
	}
	if (nbuf_reserve(&pc->dels, bytes) < 0) {
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		free(ids);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	if (n)	/* none matched: ids and dels.p may both be NULL */
		memcpy(pc->dels.p + pc->dels.len, ids, bytes);
	pc->dels.len += bytes;
	free(ids);
	b->acct += bytes;
	b->ndels += (int64_t)n;
	b->bytes += bytes;
	b->last_used = node_mono_s();
	if (n && !b->first_ms)
		b->first_ms = node_mono_ms();
	pthread_mutex_unlock(&b->lock);
	coll_put(c);
	return reply(cn, "OK n=%zu", n);
}

int cmd_delete(struct conn *cn, int argc, char **argv)
{
	uint64_t n, bytes;
	struct coll *c;
	struct batch *b;
	struct pcoll *pc;
	size_t saved;
	int rc;

	if (argc == 3)
		return delete_filter(cn, argv[1], argv[2]);
	if (parse_u64(argv[2], PAYLOAD_MAX / 8, &n) < 0 ||
	    parse_u64(argv[3], PAYLOAD_MAX, &bytes) < 0) {
		cn->quit = 1;
		return proto_err(cn, "usage: DELETE <name> <n> <bytes>");
	}
	if (!(c = id_payload_coll(cn, argv[1], n, bytes, &rc)))
		return rc;
	if (!(b = payload_batch(cn, c, bytes, &pc, &rc, NULL)))
		return rc;
	saved = pc->dels.len;
	if ((rc = read_into(cn, pc, &pc->dels, bytes)) < 0) {
		pc->dels.len = saved;
		pthread_mutex_unlock(&b->lock);
		node_pending_give(bytes);
		coll_put(c);
		if (rc == -2)
			reply(cn, "ERR INTERNAL out of memory");
		return -1;
	}
	b->acct += bytes;
	b->ndels += (int64_t)n;
	b->bytes += bytes;
	b->last_used = node_mono_s();
	if (!b->first_ms)
		b->first_ms = node_mono_ms();
	pthread_mutex_unlock(&b->lock);
	coll_put(c);
	return reply(cn, "OK n=%" PRIu64, n);
}

/*
 * Commit b (locked by the caller) and say how it went in *ok (with the
 * counts) or *e; the caller answers once it holds no lock.
 */
static int flush_batch(struct conn *cn, struct batch *b, char *ok,
		       size_t cap, int64_t *rev, struct node_flushed *f,
		       struct mv_err *e)
{
	int64_t ins = 0, del = 0;
	int rc;

	b->flushed = f;
	rc = node_flush_rev(cn->nd, b, &ins, &del, rev, e);
	b->flushed = NULL;
	if (rc == 0)
		snprintf(ok, cap, "OK inserted=%" PRId64 " deleted=%" PRId64,
			 ins, del);
	if (rc == 0 && cn->nd->cluster && *rev > 0) {
		size_t l = strlen(ok);

		snprintf(ok + l, cap - l, " rev=%" PRId64, *rev);
	}
	return rc;
}

/*
 * sync_level: a flush answers once that many holders of each new unit
 * other than this node have loaded the revision it committed at (one of
 * deletes only: that many other live nodes); one with nothing left to
 * commit (an automatic flush took it, and waited itself) waits until
 * that many other live nodes have loaded etcd's current revision.
 * Called holding no lock; f's paths are freed.
 */
static int flush_sync(struct node *nd, int64_t rev, struct node_flushed *f,
		      struct mv_err *e)
{
	int rc;

	if (!nd->cluster || nd->conf.sync_level <= 0) {
		node_flushed_release(f);
		return 0;
	}
	if (rev <= 0 && mv_meta_revision(nd->meta, &rev, NULL) < 0)
		rev = atomic_load(&nd->applied_rev);
	rc = node_sync_wait(nd, rev, f, e);
	node_flushed_release(f);
	return rc;
}

/* Unpin a session; the last pin frees one removed from the table. */
static void session_unpin(struct node *nd, struct batch *s)
{
	pthread_mutex_lock(&nd->slock);
	s->conns--;
	if (!s->session[0] && s->conns == 0)
		batch_free(s);
	pthread_mutex_unlock(&nd->slock);
}

static int commit_session(struct conn *cn, const char *name, int abort)
{
	struct node *nd = cn->nd;
	struct mv_err e = { 0 };
	char ok[128] = "OK";
	struct batch *s;
	struct node_flushed f = { 0 };
	int64_t rev = 0;
	int rc = 0;

	pthread_mutex_lock(&nd->slock);
	s = node_session_get(nd, name, 0);
	if (s) {
		/* Nobody can reach it by name now; HANDOFFs that pinned it
		 * before see it removed and go to a new session. */
		node_session_remove(nd, s);
		s->next = NULL;
		s->session[0] = '\0';
		s->conns++;
	}
	pthread_mutex_unlock(&nd->slock);
	if (!s)
		return reply(cn, "ERR NOSESSION no session '%s' (never opened, "
			     "committed, aborted, expired, or the node "
			     "restarted)", name);
	/* Counted until answered: shutdown waits for the answer too. */
	atomic_fetch_add(&nd->inflight, 1);
	pthread_mutex_lock(&s->lock);
	if (abort)
		batch_clear(s);
	else
		rc = flush_batch(cn, s, ok, sizeof(ok), &rev, &f, &e);
	pthread_mutex_unlock(&s->lock);
	session_unpin(nd, s);
	if (rc == 0 && !abort)
		rc = flush_sync(nd, rev, &f, &e);
	node_flushed_release(&f);
	rc = rc < 0 ? reply_err(cn, &e) : reply(cn, "%s", ok);
	atomic_fetch_sub(&nd->inflight, 1);
	return rc;
}

/*
 * Move the connection's pending work into its bound session, looked up or
 * created by name now, in one step: a session committed or aborted since
 * the bind is simply made anew.  0 and *rows, or an error in e: then
 * nothing moved and the pending work is dropped (a refused input leaves
 * nothing anywhere).
 */
static int handoff(struct conn *cn, int64_t *rows, struct mv_err *e)
{
	struct node *nd = cn->nd;
	struct batch *s;
	int rc;

	for (;;) {
		pthread_mutex_lock(&nd->slock);
		s = node_session_get(nd, cn->sess, 1);
		if (!s) {
			pthread_mutex_unlock(&nd->slock);
			return mv_err_set(e, MV_EINTERNAL, "out of memory");
		}
		s->conns++;	/* pinned: not freed, not expired */
		s->last_used = node_mono_s();
		pthread_mutex_unlock(&nd->slock);
		pthread_mutex_lock(&s->lock);
		if (s->session[0])
			break;
		/* Committed or aborted meanwhile: take a new one. */
		pthread_mutex_unlock(&s->lock);
		session_unpin(nd, s);
	}
	pthread_mutex_lock(&cn->own->lock);
	rc = batch_merge(nd, s, cn->own, e);
	pthread_mutex_unlock(&cn->own->lock);
	*rows = s->rows;
	pthread_mutex_unlock(&s->lock);
	session_unpin(nd, s);
	if (rc < 0)
		batch_clear_locked(cn->own);	/* a refused input leaves nothing */
	return rc;
}

/* The connection's pending work, in rows and deletes. */
static int64_t own_pending(struct conn *cn)
{
	int64_t n;

	pthread_mutex_lock(&cn->own->lock);
	n = cn->own->colls ? cn->own->rows + cn->own->ndels + 1 : 0;
	pthread_mutex_unlock(&cn->own->lock);
	return n;
}

int cmd_flush(struct conn *cn, int argc, char **argv)
{
	struct batch *b = cn->own;
	struct mv_err e = { 0 };
	struct node_flushed f = { 0 };
	char ok[128];
	int64_t rev = 0;
	int rc;

	(void)argc;
	(void)argv;
	if (cn->sess[0]) {
		int64_t rows;
		if (handoff(cn, &rows, &e) < 0)
			return reply_err(cn, &e);
		return commit_session(cn, cn->sess, 0);
	}
	if (check_autoflush(cn))
		return 0;
	atomic_fetch_add(&cn->nd->inflight, 1);
	pthread_mutex_lock(&b->lock);
	rc = flush_batch(cn, b, ok, sizeof(ok), &rev, &f, &e);
	pthread_mutex_unlock(&b->lock);
	if (rc == 0)
		rc = flush_sync(cn->nd, rev, &f, &e);
	node_flushed_release(&f);
	rc = rc < 0 ? reply_err(cn, &e) : reply(cn, "%s", ok);
	atomic_fetch_sub(&cn->nd->inflight, 1);
	return rc;
}

int cmd_handoff(struct conn *cn, int argc, char **argv)
{
	struct mv_err e = { 0 };
	int64_t rows;

	(void)argc;
	(void)argv;
	if (!cn->sess[0])
		return proto_err(cn, "HANDOFF needs a session: send SESSION "
				 "first");
	if (handoff(cn, &rows, &e) < 0)
		return reply_err(cn, &e);
	return reply(cn, "OK rows=%" PRId64, rows);
}

int cmd_session(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct batch *s;
	struct mv_err e = { 0 };
	int64_t rows;

	(void)argc;
	if (mv_name_check(argv[1], &e) < 0)
		return reply(cn, "ERR BADNAME %s", e.msg);
	if (own_pending(cn)) {
		if (!cn->sess[0])
			return proto_err(cn, "unflushed work: FLUSH it before "
					 "SESSION");
		/* Rebinding completes the input for the old session. */
		if (handoff(cn, &rows, &e) < 0)
			return reply_err(cn, &e);
	}
	pthread_mutex_lock(&nd->slock);
	/* Its key put again: another node may have let it go (relay.c). */
	s = node_session_get(nd, argv[1], 2);
	if (!s) {
		pthread_mutex_unlock(&nd->slock);
		return reply(cn, "ERR INTERNAL out of memory");
	}
	s->last_used = node_mono_s();
	pthread_mutex_lock(&s->lock);
	rows = s->rows;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&nd->slock);
	snprintf(cn->sess, sizeof(cn->sess), "%s", argv[1]);
	pthread_mutex_lock(&cn->own->lock);
	cn->own->held = 1;
	pthread_mutex_unlock(&cn->own->lock);
	return reply(cn, "OK rows=%" PRId64, rows);
}

int cmd_commit(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	return commit_session(cn, argv[1], 0);
}

int cmd_abort(struct conn *cn, int argc, char **argv)
{
	(void)argc;
	return commit_session(cn, argv[1], 1);
}

int cmd_sessions(struct conn *cn, int argc, char **argv)
{
	struct node *nd = cn->nd;
	struct batch *s;
	time_t now = node_mono_s();

	(void)argc;
	(void)argv;
	cn->out.len = 0;
	pthread_mutex_lock(&nd->slock);
	for (s = nd->sessions; s; s = s->next) {
		char line[1024], colls[768] = "";
		struct pcoll *pc;
		int64_t rows;
		int l;

		pthread_mutex_lock(&s->lock);
		rows = s->rows;
		for (pc = s->colls; pc; pc = pc->next) {
			size_t cl = strlen(colls);
			if (pc->c->dropped)
				continue;
			snprintf(colls + cl, sizeof(colls) - cl, "%s%s",
				 cl ? "," : "", pc->c->name);
		}
		pthread_mutex_unlock(&s->lock);
		l = snprintf(line, sizeof(line), "%s\t%s\t%" PRId64 "\t%lld\n",
			     s->session, colls[0] ? colls : "-", rows,
			     (long long)(now - s->last_used));
		if (nbuf_reserve(&cn->out, (size_t)l) == 0) {
			memcpy(cn->out.p + cn->out.len, line, (size_t)l);
			cn->out.len += (size_t)l;
		}
	}
	pthread_mutex_unlock(&nd->slock);
	if (nbuf_reserve(&cn->out, 4) == 0) {
		memcpy(cn->out.p + cn->out.len, "END\n", 4);
		cn->out.len += 4;
	}
	return send_raw(cn, cn->out.p, cn->out.len);
}
