/*
 * net.h - addresses, listening, connecting and the IP allow-list.
 *
 * An address is "unix:PATH", a bare path (anything with a '/'),
 * "HOST:PORT" or "[V6]:PORT".  All calls are blocking and thread-safe.
 */
#ifndef MV_NET_H
#define MV_NET_H

#include <sys/socket.h>
#include <sys/uio.h>
#include "mv.h"

struct mv_addr {
	int family;			/* AF_UNIX, AF_INET or AF_INET6 */
	struct sockaddr_storage ss;
	socklen_t len;
	char text[256];			/* as given, normalised */
};

int mv_addr_parse(const char *s, struct mv_addr *a, struct mv_err *err);
/*
 * Socket buffers big enough for megabyte payloads (vectors) to stream
 * without a wake-up every 200 KB.
 */
#define MV_NET_BUF (4 << 20)
void mv_net_bulk(int fd);

/* A connected socket, or MV_EUNAVAIL. */
int mv_net_connect(const struct mv_addr *a, struct mv_err *err);
/*
 * The same for a small exchange (a heartbeat, a node asking a node): the
 * connect is given at most ms milliseconds; a blocking socket without
 * the bulk buffers, or MV_EUNAVAIL.
 */
int mv_net_connect_within(const struct mv_addr *a, int ms,
			  struct mv_err *err);
/*
 * A listening socket.  For a Unix socket a stale file left by a crash is
 * replaced, but a live one (it accepts) is MV_EAGAIN; the new socket file
 * is 0700 whatever the umask.
 */
int mv_net_listen(const struct mv_addr *a, struct mv_err *err);
/*
 * The two halves of mv_net_listen for a TCP address: bound (the port is
 * taken: one in use fails here), then listening.  Between the two a
 * client's connection is refused, as if nothing were there.
 */
int mv_net_bind(const struct mv_addr *a, struct mv_err *err);
int mv_net_listen_bound(int fd, const struct mv_addr *a, struct mv_err *err);

struct mv_cidr {
	int family;
	unsigned char addr[16];
	int bits;
};
int mv_cidr_parse(const char *s, struct mv_cidr *c, struct mv_err *err);
/* 1 if the peer address sa is in one of the n ranges; Unix peers always. */
int mv_cidr_allow(const struct mv_cidr *c, int n, const struct sockaddr *sa);

/* Write or read exactly len bytes (EINTR retried); 0 or -1 with errno. */
int mv_write_all(int fd, const void *buf, size_t len);
/*
 * Poll fd without sleeping for up to budget_us microseconds: 1 as soon as
 * it is readable (or closed), 0 when the budget is spent.  Called before a
 * blocking read whose data is expected soon, it saves the wake-up of a
 * sleeping thread, which on a VM can cost tens of microseconds.
 */
int mv_net_spin(int fd, int budget_us);
int mv_writev_all(int fd, struct iovec *iov, int iovcnt);
int mv_read_all(int fd, void *buf, size_t len);	/* -1, errno 0 at EOF */

#endif
