/* groups_stream.h - groups as streams (groups.h holds them in memory): a
 * groups stream (pare-discover), a scores stream (the groups with their
 * statistics and the activation statistics: pare-score), and one group as a
 * record among others (pare-score's partial streams). */
#ifndef PARE_GROUPS_STREAM_H
#define PARE_GROUPS_STREAM_H

#include "format/stream.h"
#include "prune/groups.h"

/* Streams: kind "groups" (or "scores" when the groups carry stats). */
void groups_write(const group_set *gs, const char *kind, const char *path, int argc, char **argv);
/* Read a groups or scores stream ("-" = stdin); *kind_out gets "groups" or "scores". */
void groups_read(group_set *gs, const char *path, char kind_out[16]);
/* One group record: pack it on w, or parse rec (dies naming the stream on a bad
 * record). For stages that stream groups alongside other records (pare-score). */
void group_write_record(stream_writer *w, const group *g);
void group_read_record(stream_reader *r, const msgpack_object *rec, group *g);

#endif
