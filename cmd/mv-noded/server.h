/*
 * server.h - accepting connections and serving the line protocol.
 */
#ifndef MV_SERVER_H
#define MV_SERVER_H

#include "net.h"
#include "engine/engine.h"

/* Accept one connection on lfd and serve it on its own thread. */
int server_accept(struct node *nd, int lfd, const struct mv_cidr *allow,
		  int nallow);

#endif
