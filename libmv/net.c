/*
 * net.c - socket plumbing for the daemons and the client: address parsing,
 * listen/connect on Unix and TCP sockets, CIDR allow-lists, and exact
 * reads and writes.  No protocol knowledge lives here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "net.h"

int mv_addr_parse(const char *s, struct mv_addr *a, struct mv_err *err)
{
	char host[256];
	const char *colon, *port;

	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "unix:", 5) || strchr(s, '/')) {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
		const char *path = strncmp(s, "unix:", 5) ? s : s + 5;

		if (!*path || strlen(path) >= sizeof(un->sun_path))
			return mv_err_set(err, MV_EUSAGE,
					  "bad socket path '%.200s'", path);
		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", path);
		a->family = AF_UNIX;
		a->len = sizeof(*un);
		snprintf(a->text, sizeof(a->text), "unix:%s", path);
		return 0;
	}
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, end - s - 1);
		host[end - s - 1] = '\0';
		port = end + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, colon - s);
		host[colon - s] = '\0';
		port = colon + 1;
	}
	{
		struct addrinfo hints = { 0 }, *res = NULL;
		int rc;

		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		if (!*host)
			snprintf(host, sizeof(host), "127.0.0.1");
		rc = getaddrinfo(host, port, &hints, &res);
		if (rc || !res)
			return mv_err_set(err, MV_EUSAGE, "bad address '%.200s': %s",
					  s, gai_strerror(rc));
		memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
		a->len = res->ai_addrlen;
		a->family = res->ai_family;
		freeaddrinfo(res);
		snprintf(a->text, sizeof(a->text), "%s", s);
	}
	return 0;
bad:
	return mv_err_set(err, MV_EUSAGE,
			  "bad address '%.200s': want unix:PATH or HOST:PORT", s);
}

void mv_net_bulk(int fd)
{
	int sz = MV_NET_BUF;

	/* Best effort: the kernel caps it at net.core.[rw]mem_max. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

int mv_net_connect(const struct mv_addr *a, struct mv_err *err)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return mv_err_sys(err, MV_EUNAVAIL, "socket");
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		mv_err_sys(err, MV_EUNAVAIL, "cannot connect to '%s'", a->text);
		close(fd);
		return MV_EUNAVAIL;
	}
	if (a->family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	mv_net_bulk(fd);
	return fd;
}

int mv_net_connect_within(const struct mv_addr *a, int ms,
			  struct mv_err *err)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int soerr = 0, one = 1;
	socklen_t sl = sizeof(soerr);
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (fd < 0)
		return mv_err_sys(err, MV_EUNAVAIL, "socket");
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		if (errno != EINPROGRESS) {
			soerr = errno;
		} else if (poll(&p, 1, ms < 0 ? 0 : ms) != 1) {
			if (ms >= 1000 && ms % 1000 == 0)
				mv_err_set(err, MV_EUNAVAIL, "cannot connect to "
					   "'%s': no answer within %d s",
					   a->text, ms / 1000);
			else
				mv_err_set(err, MV_EUNAVAIL, "cannot connect to "
					   "'%s': no answer within %d ms",
					   a->text, ms);
			close(fd);
			return MV_EUNAVAIL;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
				      &sl) < 0) {
			soerr = errno;
		}
	}
	if (soerr) {
		errno = soerr;
		mv_err_sys(err, MV_EUNAVAIL, "cannot connect to '%s'", a->text);
		close(fd);
		return MV_EUNAVAIL;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (a->family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	mv_net_bulk(fd);
	return fd;
}

/* Bound, and listening unless bind_only (mv_net_bind). */
static int net_socket(const struct mv_addr *a, int bind_only,
		      struct mv_err *err)
{
	int fd, one = 1;

	if (a->family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)&a->ss;
		struct stat st;

		if (lstat(un->sun_path, &st) == 0) {
			int probe;

			if (!S_ISSOCK(st.st_mode))
				return mv_err_set(err, MV_ECONFIG,
					"'%s' exists and is not a socket",
					un->sun_path);
			probe = mv_net_connect(a, NULL);
			if (probe >= 0) {
				close(probe);
				return mv_err_set(err, MV_EAGAIN,
					"'%s' is in use by a running node",
					un->sun_path);
			}
			unlink(un->sun_path);	/* stale, from a crash */
		}
	}
	fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mv_err_sys(err, MV_EIO, "socket");
	if (a->family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/*
	 * A unix socket is its owner's alone (0700, whatever the umask):
	 * on Linux the mode of the socket fd before bind is the mode the
	 * file is created with, so that no other user can connect between
	 * bind and the chmod that makes the mode exact.
	 */
	if (a->family == AF_UNIX)
		fchmod(fd, 0700);
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    (!bind_only && listen(fd, 128) < 0)) {
		mv_err_sys(err, MV_ECONFIG, "cannot listen on '%s'", a->text);
		close(fd);
		return MV_ECONFIG;
	}
	if (a->family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)&a->ss;

		if (chmod(un->sun_path, 0700) < 0) {
			mv_err_sys(err, MV_EIO, "chmod '%s'", un->sun_path);
			close(fd);
			unlink(un->sun_path);
			return MV_EIO;
		}
	}
	return fd;
}

int mv_net_listen(const struct mv_addr *a, struct mv_err *err)
{
	return net_socket(a, 0, err);
}

int mv_net_bind(const struct mv_addr *a, struct mv_err *err)
{
	return net_socket(a, 1, err);
}

int mv_net_listen_bound(int fd, const struct mv_addr *a, struct mv_err *err)
{
	if (listen(fd, 128) < 0)
		return mv_err_sys(err, MV_ECONFIG, "cannot listen on '%s'",
				  a->text);
	return 0;
}

int mv_cidr_parse(const char *s, struct mv_cidr *c, struct mv_err *err)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	memset(c, 0, sizeof(*c));
	if (n >= sizeof(buf))
		goto bad;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		goto bad;
	}
	c->bits = max;
	if (slash) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || b < 0 || b > max)
			goto bad;
		c->bits = (int)b;
	}
	return 0;
bad:
	return mv_err_set(err, MV_ECONFIG, "bad CIDR '%.80s'", s);
}

static int prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full))
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((a[full] & mask) != (b[full] & mask))
			return 0;
	}
	return 1;
}

int mv_cidr_allow(const struct mv_cidr *c, int n, const struct sockaddr *sa)
{
	const unsigned char *addr;
	unsigned char v4[4];
	int family = sa->sa_family;

	if (family == AF_UNIX)
		return 1;
	if (family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		addr = s6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(v4, addr + 12, 4);
			addr = v4;
			family = AF_INET;
		}
	}
	for (int i = 0; i < n; i++)
		if (c[i].family == family && prefix_match(c[i].addr, addr, c[i].bits))
			return 1;
	return 0;
}

int mv_net_spin(int fd, int budget_us)
{
	struct timespec t0, t;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (budget_us <= 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (poll(&p, 1, 0) != 0)
			return 1;	/* readable, closed or an error: look */
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000 >= budget_us)
			return 0;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
}

int mv_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int mv_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t w = writev(fd, iov, iovcnt > 1024 ? 1024 : iovcnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (iovcnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int mv_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = 0;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}
