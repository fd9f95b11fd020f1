/* show.h - any pare stream as JSON lines, for people and for jq. */
#ifndef PARE_SHOW_H
#define PARE_SHOW_H

#include <stdbool.h>
#include <stdio.h>

/* One JSON object per line: the header, each record (pad records omitted), and a
 * final {"t":"end","records":N} once the stream has been verified. Bulk payloads
 * are {"bytes":N,"xxh64":H} unless data is true: then tensors and float arrays are
 * decoded to numbers and other payloads printed as hex. */
void show_stream(const char *path, bool data, FILE *out);

#endif
