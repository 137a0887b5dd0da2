/*
 * daemon.h - a daemon's -b: to the background once it serves.  The
 * command returns when the daemon accepts connections (so that a script
 * may run a tool on the next line), with its pid on stdout, or with the
 * daemon's own exit status when its start fails.
 */
#ifndef MV_DAEMON_H
#define MV_DAEMON_H

/*
 * Fork, before any thread is made.  Returns in the child, a new session
 * whose stdin is /dev/null; the parent waits there until the child calls
 * mv_daemon_ready (it prints the child's pid and exits 0) or exits (the
 * parent exits with the child's status).  70 and a message on stderr
 * when it cannot fork.
 */
int mv_daemon_background(const char *prog);
/* The child serves: let the parent go, and stdout to /dev/null. */
void mv_daemon_ready(void);

#endif
