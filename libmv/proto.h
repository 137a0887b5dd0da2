/*
 * proto.h - the request-line parsing of the line protocol
 * (docs/PROTOCOL.md), apart from the I/O so that it can be tested and
 * fuzzed on its own: splitting a line into words, and the unsigned
 * numbers of the arguments.
 */
#ifndef MV_PROTO_H
#define MV_PROTO_H

#include <stddef.h>
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

/*
 * A free-text argument (a filter expression) as one word: %XX for %,
 * space, control bytes, DEL and bytes past ASCII.  mv_proto_escape
 * writes s so into out (cap bytes, NUL-terminated): its length, or -1 if
 * it does not fit.  mv_proto_unescape decodes s in place: 0, or -1 for
 * a bad escape or an encoded NUL.
 */
long mv_proto_escape(const char *s, char *out, size_t cap);
int mv_proto_unescape(char *s);

/*
 * A list of node addresses (VIA): 1 to max entries separated by single
 * commas, none empty, printable ASCII without blanks.  Returns the
 * number of entries, or -1 when s is not such a list.
 * mv_proto_listed: 1 if addr is one of list's entries (whole), else 0.
 */
int mv_proto_addr_list(const char *s, int max);
int mv_proto_listed(const char *list, const char *addr);

#endif
