/* test_stream.c - stream round trips, alignment, and every corruption: each
 * truncation and each flipped byte of a small stream must end in exit status 1,
 * never a crash or a silent success. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "check.h"
#include "format/stream.h"

static char tmp_path[256];

/* header + a small record + an aligned bulk record + a tiny payload record */
static void write_sample(const char *path, const char *kind)
{
    stream_writer w;
    stream_writer_open(&w, path);
    char *argv[] = {"test", "--flag"};
    stream_write_header(&w, kind, 2, argv, 1);
    mp_pack_kv_str(&w.pk, "note", "hello");
    stream_end_record(&w);

    stream_begin_record(&w, "metric", 3);
    mp_pack_kv_str(&w.pk, "task", "wikitext2");
    mp_pack_kv_double(&w.pk, "value", 12.5);
    stream_end_record(&w);

    float big[256];
    for (int i = 0; i < 256; i++)
        big[i] = (float)i * 0.5f;
    stream_begin_record(&w, "tensor", 3);
    mp_pack_kv_str(&w.pk, "name", "w");
    stream_write_payload(&w, "data", big, sizeof big);

    stream_begin_record(&w, "blob", 2);
    stream_write_payload(&w, "data", "abc", 3);
    stream_writer_close(&w);
}

static uint8_t *slurp(const char *path, size_t *n) { return (uint8_t *)read_whole_file(path, n); }

static void test_round_trip(void)
{
    write_sample(tmp_path, "report");
    stream_reader r;
    stream_reader_open(&r, tmp_path, "report");
    CHECK(strcmp(r.kind, "report") == 0);
    CHECK(r.version == 1);
    CHECK(mp_is_str(mp_get(&r.header, "note"), "hello"));
    CHECK(mp_get(&r.header, "argv") && mp_get(&r.header, "argv")->via.array.size == 2);

    msgpack_object rec;
    CHECK(stream_next(&r, &rec));
    CHECK(mp_is_str(mp_get(&rec, "t"), "metric"));
    double v = 0;
    CHECK(mp_double(mp_get(&rec, "value"), &v) && v == 12.5);
    CHECK(r.payload_key == NULL);

    CHECK(stream_next(&r, &rec));
    CHECK(mp_is_str(mp_get(&rec, "name"), "w"));
    CHECK(r.payload_key && strcmp(r.payload_key, "data") == 0);
    CHECK(r.payload_len == 1024);
    CHECK(r.offset % 64 == 0); /* the bulk payload starts aligned */
    float big[256];
    stream_read_payload(&r, big, sizeof big);
    CHECK(big[0] == 0.0f && big[255] == 127.5f);

    CHECK(stream_next(&r, &rec));
    CHECK(mp_is_str(mp_get(&rec, "t"), "blob"));
    CHECK(r.payload_len == 3); /* left unread: stream_next must skip it */
    CHECK(!stream_next(&r, &rec));
    CHECK(r.records == 4); /* metric, pad, tensor, blob */
    stream_reader_close(&r);
}

static void test_deterministic(void)
{
    size_t n1, n2;
    write_sample(tmp_path, "report");
    uint8_t *a = slurp(tmp_path, &n1);
    write_sample(tmp_path, "report");
    uint8_t *b = slurp(tmp_path, &n2);
    CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
}

/* Every byte near the structure, every 8th inside the bulk payload. */
static size_t next_pos(size_t i, size_t n) { return i < 300 || i + 300 > n ? i + 1 : i + 8; }

/* Read a whole stream from bytes in a child; return its exit status (or 100+signal). */
static int read_in_child(const uint8_t *p, size_t n, const char *kind)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        FILE *f = fmemopen((void *)p, n ? n : 1, "rb");
        if (n == 0)
            fgetc(f); /* make an empty stream really empty */
        stream_reader r;
        stream_reader_open_file(&r, f, "mem", NULL, 0, kind);
        msgpack_object rec;
        while (stream_next(&r, &rec))
            if (r.payload_key) {
                uint8_t *buf = malloc(r.payload_len);
                stream_read_payload(&r, buf, r.payload_len);
                free(buf);
            }
        stream_reader_close(&r);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static void test_truncation_every_byte(void)
{
    size_t n;
    write_sample(tmp_path, "report");
    uint8_t *p = slurp(tmp_path, &n);
    CHECK(read_in_child(p, n, "report") == 0);
    int bad = 0;
    for (size_t len = 0; len < n; len = next_pos(len, n))
        if (read_in_child(p, len, "report") != 1)
            bad++;
    CHECK(bad == 0);
    free(p);
}

static void test_flip_every_byte(void)
{
    size_t n;
    write_sample(tmp_path, "report");
    uint8_t *p = slurp(tmp_path, &n);
    int bad = 0;
    for (size_t i = 0; i < n; i = next_pos(i, n)) {
        uint8_t *q = malloc(n);
        memcpy(q, p, n);
        q[i] ^= 0x01;
        if (read_in_child(q, n, "report") != 1) {
            bad++;
            fprintf(stderr, "flip at byte %zu not detected\n", i);
        }
        free(q);
    }
    CHECK(bad == 0);
    free(p);
}

static void test_wrong_kind_and_version(void)
{
    size_t n;
    write_sample(tmp_path, "report");
    uint8_t *p = slurp(tmp_path, &n);
    CHECK(read_in_child(p, n, "checkpoint") == 1);
    CHECK(read_in_child(p, n, NULL) == 0);
    /* version is the fixint after "version": make it 2 */
    uint8_t *v = NULL;
    for (size_t i = 0; i + 7 <= n && !v; i++)
        if (memcmp(p + i, "version", 7) == 0)
            v = p + i;
    CHECK(v != NULL);
    if (v) {
        v[7] = 0x02;
        CHECK(read_in_child(p, n, "report") == 1);
    }
    const uint8_t garbage[] = "this is not a stream at all";
    CHECK(read_in_child(garbage, sizeof garbage, NULL) == 1);
    free(p);
}

static void test_sniff(void)
{
    size_t n;
    write_sample(tmp_path, "groups");
    uint8_t *p = slurp(tmp_path, &n);
    CHECK(stream_sniff(p, n));
    CHECK(!stream_sniff((const uint8_t *)"{\"pare\"", 7));
    /* a reader handed the sniffed prefix gives the same result as a fresh one */
    FILE *f = fmemopen(p, n, "rb");
    uint8_t pre[16];
    CHECK(fread(pre, 1, 16, f) == 16);
    stream_reader r;
    stream_reader_open_file(&r, f, "mem", pre, 16, "groups");
    msgpack_object rec;
    int k = 0;
    while (stream_next(&r, &rec))
        k++;
    CHECK(k == 3);
    stream_reader_close(&r);
    fclose(f);
    free(p);
}

int main(void)
{
    set_progname("test_stream");
    snprintf(tmp_path, sizeof tmp_path, "/tmp/pare-test-stream-%d.pare", (int)getpid());
    TEST(test_round_trip);
    TEST(test_deterministic);
    TEST(test_truncation_every_byte);
    TEST(test_flip_every_byte);
    TEST(test_wrong_kind_and_version);
    TEST(test_sniff);
    unlink(tmp_path);
    return check_report();
}
