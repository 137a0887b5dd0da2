/*
 * cluster_stubs.c - placeholders for the etcd and S3 backends until their
 * branches are merged (then this file goes): they answer MV_EAGAIN.
 */
#include "meta.h"
#include "store.h"

struct mv_meta *mv_meta_open_etcd(const char *endpoints, struct mv_err *err)
{
	mv_err_set(err, MV_EAGAIN, "etcd '%s': the etcd backend is not built "
		   "in", endpoints);
	return NULL;
}

struct mv_store *mv_store_open_s3(const struct mv_s3_conf *c,
				  struct mv_err *err)
{
	mv_err_set(err, MV_EAGAIN, "s3 '%s': the S3 backend is not built in",
		   c->endpoint);
	return NULL;
}
