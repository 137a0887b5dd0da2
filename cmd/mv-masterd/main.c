/*
 * mv-masterd - the stateless router of an mv cluster.  It learns the
 * nodes from etcd (/<user>/<cluster_id>_property), asks each for its load
 * every second, and answers a client with the address of the least
 * loaded live node (or of the node holding its named session).  It keeps
 * nothing on disk: restart it at any time.  Foreground, logs to stderr,
 * clean exit on SIGTERM and SIGINT.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "daemon.h"
#include "log.h"
#include "master.h"

struct master the_master;

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: mv-masterd [-b] [-c FILE] [-n] [-v|-q] --listen=HOST:PORT\n"
"                  --etcd=URL[,URL] [--KEY=VALUE]...\n"
"Route the tools of an mv cluster to its nodes: learn them from etcd,\n"
"heartbeat them, answer each client with the least loaded live node.\n"
"  -b               to the background once serving; print its pid\n"
"  -c FILE          read FILE instead of $MV_HOME/mv.conf\n"
"  -n               check the configuration and exit\n"
"  -v               verbose log; -q warnings only\n"
"  --listen=ADDR    HOST:PORT (or unix:PATH) to serve; repeatable\n"
"  --etcd=URLS      etcd endpoints, comma-separated (required)\n"
"  --cluster_id=ID  the cluster (default 'embedded'); --user=NAME the\n"
"                   user whose keys name it (default 'default')\n"
"  --allow=CIDR     clients allowed (repeatable; default 127.0.0.1/32\n"
"                   and ::1/128)\n"
"  --heartbeat_timeout=S  seconds without an answer before a node is\n"
"                   down (default 3)\n"
"  -h, --help       this help; --version the version\n"
"It stores nothing.  See mv-masterd(8).\n");
}

static int master_set(void *m, const char *key, const char *val,
		      struct mv_err *err)
{
	return mv_conf_set(&((struct master *)m)->conf, key, val, err);
}

int main(int argc, char **argv)
{
	struct master *m = &the_master;
	struct mv_err err = { 0 };
	struct mv_args args;
	char *home = NULL;
	int rc, nl = 0;
	int lfds[MV_LISTEN_MAX];
	pthread_t watch;

	rc = mv_args_parse(&args, argc, argv, "mv-masterd", usage);
	if (rc >= 0)
		return rc;
	if (mv_conf_init(&m->conf, &err) < 0)
		goto conf_fail;
	home = mv_home();
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/mv.conf", home ? home : ".");
		if (mv_conf_load_with(args.conf_file ? args.conf_file : path,
			      !args.conf_file, master_set, m,
			      &err) < 0)
			goto conf_fail;
	}
	if (mv_args_apply(&args, master_set, m, &err) < 0)
		goto conf_fail;
	mv_args_release(&args);	/* its flags are applied: none leaks */
	if (args.verbose)
		m->conf.verbose = args.verbose;
	log_init(m->conf.verbose);
	if (!m->conf.etcd) {
		mv_err_set(&err, MV_ECONFIG, "no etcd: give --etcd=http://HOST:"
			   "PORT (the cluster's metadata)");
		goto conf_fail;
	}
	if (m->conf.nlisten == 0) {
		mv_err_set(&err, MV_ECONFIG, "no listen address: give "
			   "--listen=HOST:PORT");
		goto conf_fail;
	}
	if (m->conf.nallow == 0) {
		mv_conf_set(&m->conf, "allow", "127.0.0.1/32", NULL);
		mv_conf_set(&m->conf, "allow", "::1/128", NULL);
	}
	for (int i = 0; i < m->conf.nallow; i++)
		if (mv_cidr_parse(m->conf.allow[i], &m->allow[m->nallow++],
				  &err) < 0)
			goto conf_fail;
	for (int i = 0; i < m->conf.nlisten; i++) {
		struct mv_addr a;

		if (mv_addr_parse(m->conf.listen[i], &a, &err) < 0)
			goto conf_fail;
	}
	snprintf(m->prefix, sizeof(m->prefix), "/%s/%s_property", m->conf.user,
		 m->conf.cluster_id);
	if (args.check_only) {
		printf("mv-masterd: configuration ok\n");
		goto out;
	}
	/* Before any thread: the start's errors are the command's. */
	if (args.background && (rc = mv_daemon_background("mv-masterd")) != 0) {
		free(home);
		mv_conf_release(&m->conf);
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&m->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&m->changed, &ca);
		pthread_condattr_destroy(&ca);
	}
	for (int i = 0; i < m->conf.nlisten; i++) {
		struct mv_addr a;

		mv_addr_parse(m->conf.listen[i], &a, NULL);
		lfds[i] = mv_net_listen(&a, &err);
		if (lfds[i] < 0) {
			fprintf(stderr, "mv-masterd: %s\n", err.msg);
			for (int j = 0; j < i; j++)
				close(lfds[j]);
			free(home);
			return mv_exit_code(err.code);
		}
		nl++;
		log_info("listening on %s", a.text);
	}
	{
		struct sigaction sa = { 0 };

		sa.sa_handler = on_term;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sa.sa_handler = SIG_IGN;
		sigaction(SIGHUP, &sa, NULL);
	}
	if (pthread_create(&watch, NULL, master_watch, m))
		fatal("pthread_create");
	mv_daemon_ready();	/* it accepts; NODE waits for etcd's answer */
	log_info("mv-masterd %s following '%s' on %s", MV_VERSION, m->prefix,
		 m->conf.etcd);
	while (!got_term) {
		struct pollfd pfd[MV_LISTEN_MAX];
		int n;

		for (int i = 0; i < nl; i++) {
			pfd[i].fd = lfds[i];
			pfd[i].events = POLLIN;
		}
		n = poll(pfd, (nfds_t)nl, 500);
		if (n < 0 && errno != EINTR)
			fatal("poll");
		for (int i = 0; n > 0 && i < nl; i++)
			if (pfd[i].revents & POLLIN)
				master_accept(m, lfds[i]);
	}
	log_info("shutting down");
	atomic_store(&m->stopping, 1);
	for (int i = 0; i < nl; i++) {
		struct mv_addr a;

		close(lfds[i]);
		mv_addr_parse(m->conf.listen[i], &a, NULL);
		if (a.family == AF_UNIX)
			unlink(((struct sockaddr_un *)&a.ss)->sun_path);
	}
	log_info("stopped");
	/* Nothing to save: the threads end with the process. */
	_exit(0);
out:
	free(home);
	mv_args_release(&args);
	mv_conf_release(&m->conf);
	return 0;
conf_fail:
	free(home);
	mv_args_release(&args);
	mv_conf_release(&m->conf);
	fprintf(stderr, "mv-masterd: %s\n", err.msg);
	return mv_exit_code(err.code ? err.code : MV_ECONFIG);
}
