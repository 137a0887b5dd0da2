/*
 * proto.h - the request-line parsing of the line protocol
 * (docs/PROTOCOL.md), apart from the I/O so that it can be tested and
 * fuzzed on its own: splitting a line into words, and the unsigned
 * numbers of the arguments.
 */
#ifndef MV_PROTO_H
#define MV_PROTO_H

#include <stdint.h>

/*
 * Split line in place at spaces into at most max words (argv gets max
 * entries, then a NULL).  Returns the number of words (0 for a blank
 * line), or -1 when there are more than max.
 */
int mv_proto_split(char *line, char **argv, int max);

/*
 * A decimal number 0..max, digits only (no sign, no blanks, no hex);
 * 0, or -1 when s is not one.
 */
int mv_proto_u64(const char *s, uint64_t max, uint64_t *out);

#endif
