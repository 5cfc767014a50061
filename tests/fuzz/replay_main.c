/*
 * replay_main.c - a plain main() for libFuzzer harnesses.
 *
 * gcc builds have no libFuzzer, so every harness is also linked with this
 * file: it feeds each file under the given folders (or the files named) to
 * LLVMFuzzerTestOneInput once, plus a few synthetic inputs, so ctest replays
 * the stored corpus and past crashes on every build (fluent-bit local_test.c,
 * sqlite fuzzcheck).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    fclose(f);
    if (!buf) return -1;
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

static int run_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0; /* an empty corpus is fine */
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        if (run_path(p, count) != 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const synthetic[] = {"",  "\0",     "\xff\xff\xff\xff",
                                            "{", "a{b=\"", "\x28\xb5\x2f\xfd"};
    for (size_t i = 0; i < sizeof(synthetic) / sizeof(*synthetic); i++)
        LLVMFuzzerTestOneInput((const uint8_t *)synthetic[i], strlen(synthetic[i]));
    int count = 0;
    for (int i = 1; i < argc; i++) {
        if (run_path(argv[i], &count) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 1;
        }
    }
    printf("replayed %d inputs\n", count);
    return 0;
}
