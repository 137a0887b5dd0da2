/*
 * mv-noded - the mv node daemon.  With no flags it is the embedded
 * database: data in $MV_HOME (default ~/.mv), listening on
 * unix:$MV_HOME/mv.sock.  Foreground, logs to stderr, clean shutdown on
 * SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif
#include "bigmem.h"
#include "daemon.h"
#include "log.h"
#include "net.h"
#include "server.h"

static volatile sig_atomic_t got_term, got_hup;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

/* SIGHUP (a closed terminal, a log rotation) must not stop the node. */
static void on_hup(int sig)
{
	(void)sig;
	got_hup = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: mv-noded [-b] [-c FILE] [-n] [-v] [--KEY=VALUE]...\n"
"Serve an mv data directory (default $MV_HOME, else ~/.mv) on\n"
"unix:$MV_HOME/mv.sock and any --listen addresses.\n"
"  -b               to the background once serving; print its pid\n"
"  -c FILE          read FILE instead of $MV_HOME/mv.conf\n"
"  -n               check the configuration and exit\n"
"  -v               verbose log (repeat for more)\n"
"  -q               log warnings only\n"
"  --KEY=VALUE      any mv.conf key: auto_flush, flush_interval,\n"
"                   flush_limit, session_ttl, listen, data_dir, allow,\n"
"                   user, cluster_id, etcd, s3_endpoint, ...\n"
"  -h, --help       this help; --version the version\n"
"See mv-noded(8) and mv.conf(5).\n");
}

#define POOL_AGE 10	/* seconds freed memory is kept for reuse */
#define DRAIN_MS 6000	/* requests under way at SIGTERM: answered within */

static void *ticker(void *arg)
{
	struct node *nd = arg;

	for (unsigned i = 1; ; i++) {
		usleep(50 * 1000);
		if (atomic_load(&nd->shutting_down))
			break;
		node_tick(nd);
		if (i % 20 == 0)
			mv_big_trim(POOL_AGE);
	}
	return NULL;
}

/* Merge small segments now and then, off the request threads. */
static void *housekeeper(void *arg)
{
	struct node *nd = arg;

	for (;;) {
		sleep(2);
		if (atomic_load(&nd->shutting_down))
			break;
		node_housekeep(nd);
		malloc_trim(0);
	}
	return NULL;
}

static int node_set(void *conf, const char *key, const char *val,
		    struct mv_err *err)
{
	return mv_conf_set(conf, key, val, err);
}

/*
 * Settings read only when the process starts, so the node puts them in
 * its environment and executes itself again, before anything is opened
 * (if the exec fails it runs on without them).  A value the user set is
 * kept.
 *
 * Transparent huge pages for the heap: on a VM a page touched afresh costs
 * a fault that took most of a restart's CPU (an index's lists, the id
 * map; docs/BENCHMARKS.md), and huge pages also save TLB misses in
 * searches.  glibc's malloc madvises its heaps for them when the tunable
 * glibc.malloc.hugetlb is 1 (added to GLIBC_TUNABLES; MV_HUGEPAGES=0
 * leaves it).
 *
 * OPENBLAS_THREAD_TIMEOUT=4: OpenBLAS's threads spin for 2^28 cycles
 * (about 0.1 s) after every call before they sleep, so after a batch
 * search (its quantizer or brute force goes through sgemm) they held the
 * cores that the next single queries and their clients wanted: with 2
 * threads, IVF single queries after a batch ran at a quarter of their
 * rate, p99 1.1 ms (docs/BENCHMARKS.md).  2^4 cycles: they sleep at once.
 * OMP_WAIT_POLICY=PASSIVE does the same for FAISS's OpenMP threads (the
 * benchmarks run with it).
 */
static void start_env(char **argv)
{
	const char *t = getenv("GLIBC_TUNABLES");
	const char *off = getenv("MV_HUGEPAGES");
	const char *blas = getenv("OPENBLAS_THREAD_TIMEOUT");
	const char *omp = getenv("OMP_WAIT_POLICY");
	int tune = !(off && !strcmp(off, "0")) &&
		   !(t && strstr(t, "glibc.malloc.hugetlb="));
	char exe[4096], *v = NULL;
	ssize_t n;
	size_t len;

	if (!tune && blas && omp)
		return;
	/* The binary by its own name, so that ps and pkill still see it. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return;
	exe[n] = '\0';
	if (tune) {
		len = (t ? strlen(t) : 0) + 32;
		if (!(v = malloc(len)))
			return;
		snprintf(v, len, "%s%sglibc.malloc.hugetlb=1", t ? t : "",
			 t && *t ? ":" : "");
		if (setenv("GLIBC_TUNABLES", v, 1) < 0)
			goto out;
	}
	if ((!blas && setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) < 0) ||
	    (!omp && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) < 0))
		goto out;
	execv(exe, argv);
out:
	if (tune && t)
		setenv("GLIBC_TUNABLES", t, 1);
	else if (tune)
		unsetenv("GLIBC_TUNABLES");
	if (!blas)
		unsetenv("OPENBLAS_THREAD_TIMEOUT");
	if (!omp)
		unsetenv("OMP_WAIT_POLICY");
	free(v);
}

/*
 * TCP addresses are bound before the node opens its data and joins a
 * cluster (bind_tcp): a port in use stops the start before it joins,
 * which would leave a member that never answers.  They listen, and the
 * unix sockets are made (a stale one there is replaced, so only once the
 * data directory's lock is held), once it is open (listen_all).  Until
 * then a client's connection is refused, as before.  0, or the MV_E*
 * code of the first that failed (said in the log).
 */
static int bind_tcp(struct node *nd, int *lfds)
{
	for (int i = 0; i < nd->conf.nlisten; i++)
		lfds[i] = -1;
	for (int i = 0; i < nd->conf.nlisten; i++) {
		struct mv_addr a;
		struct mv_err err = { 0 };

		mv_addr_parse(nd->conf.listen[i], &a, NULL);
		if (a.family == AF_UNIX)
			continue;
		lfds[i] = mv_net_bind(&a, &err);
		if (lfds[i] < 0) {
			log_warnx("%s", err.msg);
			return err.code;
		}
	}
	return 0;
}

static int listen_all(struct node *nd, int *lfds)
{
	for (int i = 0; i < nd->conf.nlisten; i++) {
		struct mv_addr a;
		struct mv_err err = { 0 };

		mv_addr_parse(nd->conf.listen[i], &a, NULL);
		if (a.family == AF_UNIX)
			lfds[i] = mv_net_listen(&a, &err);
		else if (mv_net_listen_bound(lfds[i], &a, &err) < 0) {
			close(lfds[i]);
			lfds[i] = -1;
		}
		if (lfds[i] < 0) {
			log_warnx("%s", err.msg);
			return err.code;
		}
		if (i == 0)
			snprintf(nd->addr, sizeof(nd->addr), "%s", a.text);
		log_info("listening on %s", a.text);
	}
	return 0;
}

/* Close what listen_all opened; a unix socket's file goes with it. */
static void close_all(struct node *nd, int *lfds)
{
	for (int i = 0; i < nd->conf.nlisten; i++) {
		struct mv_addr a;

		if (lfds[i] < 0)
			continue;
		close(lfds[i]);
		lfds[i] = -1;
		mv_addr_parse(nd->conf.listen[i], &a, NULL);
		if (a.family == AF_UNIX)
			unlink(((struct sockaddr_un *)&a.ss)->sun_path);
	}
}

int main(int argc, char **argv)
{
	static struct node nd;
	struct mv_err err = { 0 };
	struct mv_args args;
	char *home = NULL;
	int rc;
	int lfds[MV_LISTEN_MAX];
	struct mv_cidr allow[MV_ALLOW_MAX + 2];
	int nallow = 0, def_allow;
	pthread_t tick, hk;

	start_env(argv);
	rc = mv_args_parse(&args, argc, argv, "mv-noded", usage);
	if (rc >= 0)
		return rc;
	if (mv_conf_init(&nd.conf, &err) < 0)
		goto conf_fail;
	home = mv_home();
	{
		char path[4096];
		snprintf(path, sizeof(path), "%s/mv.conf", home);
		if (mv_conf_load(&nd.conf, args.conf_file ? args.conf_file : path,
				 !args.conf_file, &err) < 0)
			goto conf_fail;
	}
	if (mv_args_apply(&args, node_set, &nd.conf, &err) < 0)
		goto conf_fail;
	mv_args_release(&args);
	if (args.verbose)
		nd.conf.verbose = args.verbose;
	log_init(nd.conf.verbose);
	if (nd.conf.nlisten == 0) {
		char def[4200];
		snprintf(def, sizeof(def), "unix:%s/mv.sock", home);
		mv_conf_set(&nd.conf, "listen", def, NULL);
	}
	def_allow = nd.conf.nallow == 0;
	if (def_allow) {
		mv_conf_set(&nd.conf, "allow", "127.0.0.1/32", NULL);
		mv_conf_set(&nd.conf, "allow", "::1/128", NULL);
	}
	for (int i = 0; i < nd.conf.nallow; i++)
		if (mv_cidr_parse(nd.conf.allow[i], &allow[nallow++], &err) < 0)
			goto conf_fail;
	for (int i = 0; i < nd.conf.nlisten; i++) {
		struct mv_addr a;
		if (mv_addr_parse(nd.conf.listen[i], &a, &err) < 0)
			goto conf_fail;
		/* Reachable from other hosts, which the default refuses. */
		if (def_allow && a.family != AF_UNIX &&
		    !mv_cidr_allow(allow, nallow, (struct sockaddr *)&a.ss))
			log_warnx("listening on %s with the default allow "
				  "(127.0.0.1/32, ::1/128): clients%s on other "
				  "hosts are refused; set allow (mv.conf(5))",
				  a.text, nd.conf.etcd ? ", the master and "
				  "the other nodes" : "");
	}
	if (mv_conf_cluster_check(&nd.conf, &err) < 0)
		goto conf_fail;
	if (args.check_only) {
		printf("mv-noded: configuration ok\n");
		free(home);
		mv_conf_release(&nd.conf);
		return 0;
	}
	/* Before any thread: the start's errors are the command's. */
	if (args.background && (rc = mv_daemon_background("mv-noded")) != 0)
		return rc;
	if (mv_mkdir_p(nd.conf.data_dir, &err) < 0 ||
	    mv_mkdir_p(home, &err) < 0) {
		fprintf(stderr, "mv-noded: %s\n", err.msg);
		return mv_exit_code(err.code);
	}
	free(home);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Blocks up to 64 MiB come from the heap and are reused by the next
	 * request instead of being mapped and faulted in afresh each time
	 * (FAISS allocates a 16 MiB block per search call, a request its
	 * buffers): a SEARCH of 4,096 queries took 4,000 page faults.  What
	 * the heap keeps is handed back by malloc_trim on the housekeeping
	 * thread every two seconds, and at once after an index build.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	/*
	 * Memory freed by drops, merges and discarded batches is kept a few
	 * seconds for the next insert (bigmem.h): on a VM, memory touched
	 * afresh can cost more than the disk.  At most 1 GiB or 1/16 of RAM.
	 */
	{
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		size_t lim = (size_t)1 << 30;

		if (pages > 0 && psz > 0 && (size_t)pages * (size_t)psz / 16 < lim)
			lim = (size_t)pages * (size_t)psz / 16;
		mv_big_pool_limit(lim);
	}
	the_node = &nd;
	/* TCP ports taken before a cluster node joins (bind_tcp). */
	if ((rc = bind_tcp(&nd, lfds)) < 0) {
		close_all(&nd, lfds);
		return mv_exit_code(rc);
	}
	/* A cluster node joins once it listens (node_start, below). */
	nd.start_later = 1;
	if (node_open(&nd, &err) < 0) {
		close_all(&nd, lfds);
		log_warnx("cannot open '%s': %s", nd.conf.data_dir, err.msg);
		/* A damaged store needs the operator: EX_CONFIG, like a bad
		 * data_dir; nothing was changed or deleted. */
		if (err.code == MV_EDATA) {
			log_warnx("the data directory is left as it was; "
				  "repair or restore it, then start again");
			return mv_exit_code(MV_ECONFIG);
		}
		return mv_exit_code(err.code);
	}
	if ((rc = listen_all(&nd, lfds)) < 0) {
		close_all(&nd, lfds);
		node_close(&nd);
		return mv_exit_code(rc);
	}
	if (node_start(&nd, &err) < 0) {
		log_warnx("cannot join the cluster: %s", err.msg);
		close_all(&nd, lfds);
		node_close(&nd);
		return mv_exit_code(err.code);
	}
	{
		struct sigaction sa = { 0 };
		sa.sa_handler = on_term;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sa.sa_handler = on_hup;
		sigaction(SIGHUP, &sa, NULL);
	}
	mv_daemon_ready();	/* it accepts, and a cluster node is live */
	pthread_create(&tick, NULL, ticker, &nd);
	pthread_create(&hk, NULL, housekeeper, &nd);
	log_info("mv-noded %s serving '%s'", MV_VERSION, nd.conf.data_dir);
	while (!got_term) {
		struct pollfd pfd[MV_LISTEN_MAX];
		int n;

		for (int i = 0; i < nd.conf.nlisten; i++) {
			pfd[i].fd = lfds[i];
			pfd[i].events = POLLIN;
		}
		n = poll(pfd, (nfds_t)nd.conf.nlisten, 500);
		if (n < 0 && errno != EINTR)
			fatal("poll");
		if (got_hup) {
			got_hup = 0;
			log_info("SIGHUP ignored: the log is stderr, which "
				 "needs no reopening, and the configuration "
				 "is read at start only");
		}
		for (int i = 0; n > 0 && i < nd.conf.nlisten; i++)
			if (pfd[i].revents & POLLIN)
				server_accept(&nd, lfds[i], allow, nallow);
	}
	/*
	 * No new connection (the sockets go first), and no new flush; a
	 * cluster node leaves (its live key revoked: the others stop asking
	 * it) but goes on following the commit log.  Flushes under way
	 * finish and are answered (a client must not see a closed
	 * connection for a committed flush), and so do the other requests
	 * under way, up to DRAIN_MS (a search waits 5 s at most); then the
	 * node stops following and takes the commit lock, so that no other
	 * commit is half done.
	 */
	log_info("shutting down");
	atomic_store(&nd.shutting_down, 1);
	close_all(&nd, lfds);
	node_cluster_leave(&nd);
	for (int i = 0; i < 6000 && atomic_load(&nd.inflight) > 0; i++)
		usleep(10 * 1000);
	for (int i = 0; i < DRAIN_MS / 10 && atomic_load(&nd.serving) > 0; i++)
		usleep(10 * 1000);
	node_cluster_stop(&nd);
	pthread_mutex_lock(&nd.commit);
	log_info("stopped");
#ifdef __SANITIZE_ADDRESS__
	/* _exit skips LeakSanitizer's check at exit: make asan wants it. */
	__lsan_do_leak_check();
#endif
	_exit(0);
conf_fail:
	free(home);
	mv_args_release(&args);
	mv_conf_release(&nd.conf);
	fprintf(stderr, "mv-noded: %s\n", err.msg);
	return mv_exit_code(err.code ? err.code : MV_ECONFIG);
}
