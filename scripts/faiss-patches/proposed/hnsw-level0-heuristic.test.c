/*
 * The unit test of hnsw-level0-heuristic.patch, for tests/unit/test_index.c
 * (appended at its end) when the patch is applied: it fails (40 links)
 * against FAISS without it.  Not compiled from here.
 */
#ifdef MV_FAISS_PATCHED
/* Take n bytes at *p of a serialised index, or fail. */
static int take(const unsigned char **p, const unsigned char *end, void *out,
		size_t n)
{
	if ((size_t)(end - *p) < n)
		return -1;
	if (out)
		memcpy(out, *p, n);
	*p += n;
	return 0;
}

/* Skip a FAISS vector (a size_t count, then count items of size sz). */
static int skip_vec(const unsigned char **p, const unsigned char *end,
		    size_t sz, uint64_t *count)
{
	uint64_t n;

	if (take(p, end, &n, 8) < 0 || n > (uint64_t)(end - *p) / sz)
		return -1;
	if (count)
		*count = n;
	*p += n * sz;
	return 0;
}

/*
 * The level-0 list of the last vector of an IndexHNSWFlat serialised by
 * FAISS 1.7.3 (index_write.cpp: fourcc "IHNf", the index header, then
 * HNSW's assign_probas, cum_nneighbor_per_level, levels, offsets and
 * neighbors vectors): how many links it holds, or -1.
 */
static int last_level0_links(const void *buf, size_t len)
{
	const unsigned char *p = buf, *end = p + len, *cum, *off, *nb;
	uint64_t ncum, noff, nnb, o;
	int32_t metric, c0, c1, l;
	int links = 0;

	if (len < 4 || memcmp(p, "IHNf", 4) ||
	    take(&p, end, NULL, 4 + 4 + 8 + 8 + 8 + 1) < 0 ||
	    take(&p, end, &metric, 4) < 0 ||
	    (metric > 1 && take(&p, end, NULL, 4) < 0) ||
	    skip_vec(&p, end, 8, NULL) < 0)
		return -1;
	cum = p + 8;
	if (skip_vec(&p, end, 4, &ncum) < 0 || ncum < 2 ||
	    skip_vec(&p, end, 4, NULL) < 0)
		return -1;
	off = p + 8;
	if (skip_vec(&p, end, 8, &noff) < 0 || noff < 2)
		return -1;
	nb = p + 8;
	if (skip_vec(&p, end, 4, &nnb) < 0)
		return -1;
	memcpy(&c0, cum, 4);
	memcpy(&c1, cum + 4, 4);
	memcpy(&o, off + (noff - 2) * 8, 8);	/* the last vector's */
	if (c0 < 0 || c1 <= c0 || o + (uint64_t)c1 > nnb)
		return -1;
	for (int32_t i = c0; i < c1; i++) {
		memcpy(&l, nb + (o + (uint64_t)i) * 4, 4);
		links += l >= 0;
	}
	return links;
}

/*
 * FAISS patch 04: a new vector links on level 0 to at most M neighbours,
 * chosen by the heuristic, as hnswlib does; stock 1.7.3 kept every one of
 * the efConstruction candidates up to 2 M: here all 40 for M 32.  The last
 * vector, added alone, has no back links yet: its list is what it chose.
 */
TEST(index_hnsw_level0_links_at_most_m)
{
	float *x = randvecs(N, 7);
	struct mv_err err = { 0 };
	struct mv_index *ix = mv_index_new("HNSW32", D, 0, &err);
	void *buf = NULL;
	size_t len = 0;
	int links;

	REQUIRE(ix != NULL);
	CHECK_EQ_INT(mv_index_set(ix, "efConstruction", 40, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, N - 1, x, &err), 0);
	CHECK_EQ_INT(mv_index_add(ix, 1, x + (size_t)(N - 1) * D, &err), 0);
	REQUIRE(mv_index_write(ix, &buf, &len, &err) == 0);
	links = last_level0_links(buf, len);
	unit_diag("last vector's level-0 links: %d (M 32, efConstruction 40)",
		  links);
	CHECK(links >= 1);
	CHECK(links <= 32);
	free(buf);
	mv_index_free(ix);
	free(x);
}
#endif
