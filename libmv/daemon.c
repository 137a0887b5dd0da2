/*
 * daemon.c - a daemon's -b (daemon.h): a pipe from the child to the
 * parent carries one byte once the child serves; end of file before it
 * means the child's start failed, and its exit status says how.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "daemon.h"

static int ready_fd = -1;

/* Point fd at /dev/null. */
static void to_null(int fd, int flags)
{
	int n = open("/dev/null", flags | O_CLOEXEC);

	if (n >= 0 && n != fd) {
		dup2(n, fd);
		close(n);
	}
}

int mv_daemon_background(const char *prog)
{
	int p[2], st;
	pid_t pid;
	char c;
	ssize_t r;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "%s: cannot go to the background: %s\n", prog,
			strerror(errno));
		return 70;
	}
	if (pid == 0) {
		close(p[0]);
		ready_fd = p[1];
		setsid();
		to_null(0, O_RDONLY);
		return 0;
	}
	close(p[1]);
	do
		r = read(p[0], &c, 1);
	while (r < 0 && errno == EINTR);
	if (r == 1) {
		printf("%ld\n", (long)pid);
		exit(fflush(stdout) == 0 ? 0 : 74);
	}
	/* Its start failed: it said why on stderr; its status is ours. */
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			exit(70);
	exit(WIFEXITED(st) ? WEXITSTATUS(st) : 70);
}

void mv_daemon_ready(void)
{
	if (ready_fd < 0)
		return;
	fflush(stdout);
	to_null(1, O_WRONLY);
	if (write(ready_fd, "", 1) < 0) {
		/* The parent is gone: nobody to tell. */
	}
	close(ready_fd);
	ready_fd = -1;
}
