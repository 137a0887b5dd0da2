/*
 * test_net.c - unit tests of net.h's busy poll: it returns at once when
 * data is there, and gives up after its budget when none comes.
 */
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "net.h"
#include "unit.h"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

TEST(net_spin_budget_and_wakeup)
{
	int sv[2];
	double t0, dt;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK_EQ_INT(mv_net_spin(sv[0], 0), 0);
	t0 = now_us();
	CHECK_EQ_INT(mv_net_spin(sv[0], 3000), 0);
	dt = now_us() - t0;
	CHECK(dt >= 3000);
	REQUIRE(write(sv[1], "x", 1) == 1);
	t0 = now_us();
	CHECK_EQ_INT(mv_net_spin(sv[0], 1000000), 1);
	CHECK(now_us() - t0 < 500000);
	close(sv[1]);
	close(sv[0]);
}
