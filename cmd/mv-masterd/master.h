/*
 * master.h - what the files of mv-masterd share: the table of nodes it
 * learns from etcd and heartbeats (nodes.c), and the connections of its
 * clients (serve.c).  The master keeps nothing on disk: the table is
 * rebuilt from etcd and from the nodes' answers after every start.
 */
#ifndef MV_MASTER_H
#define MV_MASTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "conf.h"
#include "meta.h"
#include "net.h"

#define MASTER_NODES_MAX 256		/* nodes of one cluster */
#define HEARTBEAT_EVERY_MS 1000		/* a LOAD to every node */
#define MASTER_LINE_MAX 1024		/* a request line */
#define MASTER_FIRST_READ_MS 3000	/* a NODE waits for the first read */
#define MASTER_NODE_WAIT_MS 2000	/* and for a node to be up */

/*
 * One node as the master knows it.  listed: in the property key; live:
 * its live/<N> key exists (the node holds its lease).  A node is up when
 * it is live and has not failed its heartbeats for heartbeat_timeout
 * (one that never answered since the master started is down at its first
 * failure).  Guarded by master.lock; fd belongs to the node's heartbeat
 * thread alone.
 */
struct mnode {
	int used;
	uint32_t no;
	int listed, live;
	char prop_addr[256], live_addr[256];
	int answered;			/* answered since the master started */
	double fail_since;		/* monotonic s of the first failure; 0 ok */
	char why[256];			/* the last failure */
	int64_t load, mem, segments;
	int64_t held, limit;		/* LOAD's: memory_limit's measure */
	int assigned;			/* clients sent since the last LOAD */
	int logged_up;			/* the state last logged */
	int logged_never;		/* "does not answer" said, never up */
	int poke;			/* heartbeat now: it just went live */
};

struct master {
	struct mv_conf conf;
	char prefix[MV_NAME_MAX * 2 + 32]; /* /<user>/<cluster_id>_property */
	struct mv_meta *meta;		/* NULL until etcd first answers */
	pthread_mutex_t lock;		/* the nodes, meta and loaded */
	pthread_cond_t changed;		/* loaded, a node up, a poke */
	int loaded;			/* the keys were read once */
	int quiet;			/* reading afresh: log the changes after */
	struct mnode nodes[MASTER_NODES_MAX];
	atomic_int stopping;
	atomic_int nconns;
	int nallow;
	struct mv_cidr allow[MV_ALLOW_MAX + 2];
};

extern struct master the_master;

/* nodes.c */
double master_now(void);
/* The watch thread (etcd: range, then watch; again when compacted). */
void *master_watch(void *arg);
/* 1 when n is up now (master.lock held). */
int mnode_up(const struct master *m, const struct mnode *n, double now);
/* The address clients are sent to (master.lock held). */
const char *mnode_addr(const struct mnode *n);
/*
 * The node a client goes to: the up node with the least load (ties: the
 * lowest number), where one failing its heartbeats loses to any that
 * answers and one in the comma-separated list avoid to any other; with
 * session not NULL, the node holding that session, if it holds one;
 * with coll (a collection's index commands), the up node ranked first
 * for that name (rank.h) instead of the least loaded, so that a build,
 * its --status and a second build asked meanwhile all go to one node.
 * With no node up it waits, at most MASTER_NODE_WAIT_MS, for one: nodes
 * started with the master are not up yet.  0 and addr/no filled, or
 * MV_EAGAIN with err saying why.
 */
int master_pick(struct master *m, const char *session, const char *coll,
		const char *avoid, char *addr, size_t cap, uint32_t *no,
		struct mv_err *err);

/*
 * Remove node no, or with no < 0 the member whose address is addr, from
 * the cluster's members (FORGET): refused while its live key exists;
 * the property's "next" keeps its number from being given to a new
 * node.  0, MASTER_NOTMEMBER, MASTER_LIVE, or MV_EAGAIN
 * (etcd) with err set.
 */
#define MASTER_NOTMEMBER 1
#define MASTER_LIVE 2
int master_forget(struct master *m, int64_t no, const char *addr,
		  struct mv_err *err);

/* serve.c: take one connection from the listening socket lfd. */
void master_accept(struct master *m, int lfd);

#endif
