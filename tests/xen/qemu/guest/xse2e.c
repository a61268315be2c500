/* xse2e: a tiny xenstore client for the guests of the real-Xen E2E (tests/xen/qemu).
 *
 * Speaks the raw wire protocol over the guest kernel's /dev/xen/xenbus (the kernel's xenbus
 * driver forwards it over the real ring), so a check can see the exact errno name the daemon
 * answered (xenstore-read only says "couldn't read path"), keep a transaction open, and time
 * 1000 requests from one process for the benchmark. No Xen headers: the few constants are
 * those of xen/io/xs_wire.h. Built static on the host by scripts/e2e-xen.ts.
 *
 *   xse2e read PATH            OK <value> | ERR <ERRNO>      (exit 0 | 1)
 *   xse2e write PATH VALUE     OK | ERR <ERRNO>
 *   xse2e ls PATH              OK <child> <child>... | ERR <ERRNO>
 *   xse2e getperms PATH        OK <perm> <perm>... | ERR <ERRNO>
 *   xse2e setperms PATH PERM.. OK | ERR <ERRNO>            (PERM like n5, r7)
 *   xse2e txn PATH VALUE       a transaction that writes PATH, checks isolation, commits
 *   xse2e txn-hold PATH        starts a transaction, writes PATH inside it, never ends it
 *   xse2e bench N PATH         N sequential READs of PATH, prints BENCH ... latencies in us
 *   xse2e bench-time MS PATH   sequential READs of PATH for MS milliseconds, prints the same
 *                              (several guests reading at once for the same time: total throughput)
 *   xse2e idle MS              sleeps MS milliseconds between an idle-begin and an idle-end mark
 *                              (the machine's background, to compare with a benchmark's window)
 *   xse2e rounds PATH STOPPATH  round trips until STOPPATH reads "stop": each writes PATH=<n>, reads it
 *                              back (must be <n>) and reads STOPPATH; prints ROUNDS n=... errors=...
 *                              max_us=... (the longest round: a live update's stall) [first_error=...]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
  XS_DIRECTORY = 1, XS_READ = 2, XS_GET_PERMS = 3, XS_TRANSACTION_START = 6,
  XS_TRANSACTION_END = 7, XS_WRITE = 11, XS_SET_PERMS = 14, XS_ERROR = 16,
};
#define PAYLOAD_MAX 4096

struct hdr { uint32_t type, req_id, tx_id, len; };

static int fd = -1;
static uint32_t next_req = 1;
static char reply[PAYLOAD_MAX + 1];
static uint32_t reply_len, reply_type;

static int read_full(void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

/* One request: PARTS (each nul-terminated in the payload except the last when !lastnul). */
static int request(uint32_t type, uint32_t tx, const char *const *parts, int nparts, int lastnul) {
  char buf[sizeof(struct hdr) + PAYLOAD_MAX];
  struct hdr *h = (struct hdr *)buf;
  uint32_t len = 0;
  for (int i = 0; i < nparts; i++) {
    size_t l = strlen(parts[i]) + ((i < nparts - 1 || lastnul) ? 1 : 0);
    if (len + l > PAYLOAD_MAX) { fprintf(stderr, "request too long\n"); exit(2); }
    memcpy(buf + sizeof *h + len, parts[i], l);
    len += (uint32_t)l;
  }
  h->type = type; h->req_id = next_req++; h->tx_id = tx; h->len = len;
  size_t total = sizeof *h + len, off = 0;
  while (off < total) {
    ssize_t w = write(fd, buf + off, total - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { perror("write /dev/xen/xenbus"); exit(2); }
    off += (size_t)w;
  }
  struct hdr rh;
  if (read_full(&rh, sizeof rh) < 0 || rh.len > PAYLOAD_MAX || read_full(reply, rh.len) < 0) {
    fprintf(stderr, "short reply from /dev/xen/xenbus\n"); exit(2);
  }
  reply[rh.len] = 0; reply_len = rh.len; reply_type = rh.type;
  return rh.type == XS_ERROR ? -1 : 0;
}

static int req1(uint32_t type, uint32_t tx, const char *a) { const char *p[] = {a}; return request(type, tx, p, 1, 1); }

/* Prints "OK" + the reply's nul-separated strings, or "ERR <name>". */
static int report(int rc, int show) {
  if (rc < 0) { printf("ERR %s\n", reply); return 1; }
  printf("OK");
  if (show) {
    for (uint32_t i = 0; i < reply_len;) {
      printf(" %s", reply + i);
      i += (uint32_t)strlen(reply + i) + 1;
    }
  }
  printf("\n");
  return 0;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Marks for e2e/xen/tcg_plugin (`e2e:xen --tcg-counts`): the 8-byte NOP nopl 0x58434dKK(%rax,%rax,1),
 * whose execution the plugin records with its counters at that instant; a no-op otherwise. KK: 1/2
 * begin/end of a benchmark's timed READs, 3/4 begin/end of an idle window (e2e/xen/tcg_counts.ts). */
#define TCG_MARK(kk) __asm__ volatile(".byte 0x0f,0x1f,0x84,0x00," #kk ",0x4d,0x43,0x58" ::: "memory")

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static uint32_t txn_start(void) {
  if (req1(XS_TRANSACTION_START, 0, "") < 0) { printf("ERR %s (transaction start)\n", reply); exit(1); }
  return (uint32_t)strtoul(reply, NULL, 10);
}

static int write_value(uint32_t tx, const char *path, const char *value) {
  const char *p[] = {path, value};
  return request(XS_WRITE, tx, p, 2, 0);
}

/* One round of "rounds": write PATH=<n>, read it back, read STOP. 1: STOP reads "stop"; 0: go on;
 * -1: an error (described in ERR). */
static int one_round(const char *path, const char *stop, long n, char *err, size_t errlen) {
  char val[32];
  snprintf(val, sizeof val, "%ld", n);
  if (write_value(0, path, val) < 0) { snprintf(err, errlen, "%.40s (round %ld: write)", reply, n); return -1; }
  if (req1(XS_READ, 0, path) < 0) { snprintf(err, errlen, "%.40s (round %ld: read)", reply, n); return -1; }
  if (strcmp(reply, val)) {
    snprintf(err, errlen, "read back [%.40s], wrote [%s] (round %ld)", reply, val, n);
    return -1;
  }
  if (req1(XS_READ, 0, stop) < 0) { snprintf(err, errlen, "%.40s (round %ld: read the stop node)", reply, n); return -1; }
  return strcmp(reply, "stop") == 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) { fprintf(stderr, "usage: see the source\n"); return 2; }
  fd = open("/dev/xen/xenbus", O_RDWR);
  if (fd < 0) { perror("open /dev/xen/xenbus"); return 2; }
  const char *cmd = argv[1], *path = argv[2];
  if (!strcmp(cmd, "read")) {
    int rc = req1(XS_READ, 0, path);
    if (rc < 0) return report(rc, 0);
    printf("OK %.*s\n", (int)reply_len, reply);
    return 0;
  }
  if (!strcmp(cmd, "write") && argc == 4) return report(write_value(0, path, argv[3]), 0);
  if (!strcmp(cmd, "ls")) return report(req1(XS_DIRECTORY, 0, path), 1);
  if (!strcmp(cmd, "getperms")) return report(req1(XS_GET_PERMS, 0, path), 1);
  if (!strcmp(cmd, "setperms") && argc >= 4) {
    const char *p[64];
    int n = 0;
    for (int i = 2; i < argc && n < 64; i++) p[n++] = argv[i];
    return report(request(XS_SET_PERMS, 0, p, n, 1), 0);
  }
  if (!strcmp(cmd, "txn") && argc == 4) {
    /* Inside: the write is visible; outside: not until the commit; after it: visible. */
    uint32_t tx = txn_start();
    if (write_value(tx, path, argv[3]) < 0) { printf("ERR %s (write in transaction)\n", reply); return 1; }
    int inside = req1(XS_READ, tx, path) == 0 && !strcmp(reply, argv[3]);
    int outside_before = req1(XS_READ, 0, path) == 0 && !strcmp(reply, argv[3]);
    if (req1(XS_TRANSACTION_END, tx, "T") < 0) { printf("ERR %s (commit)\n", reply); return 1; }
    int outside_after = req1(XS_READ, 0, path) == 0 && !strcmp(reply, argv[3]);
    printf("%s tx=%u inside=%d outside_before_commit=%d outside_after_commit=%d\n",
           inside && !outside_before && outside_after ? "OK" : "BAD", tx, inside, outside_before, outside_after);
    return inside && !outside_before && outside_after ? 0 : 1;
  }
  if (!strcmp(cmd, "txn-hold")) {
    uint32_t tx = txn_start();
    if (write_value(tx, path, "held") < 0) { printf("ERR %s (write in transaction)\n", reply); return 1; }
    printf("HELD tx=%u\n", tx);
    for (;;) pause();
  }
  if ((!strcmp(cmd, "bench") || !strcmp(cmd, "bench-time")) && argc == 4) {
    /* bench: N reads; bench-time: as many as fit in MS milliseconds (at most MAX_READS) */
    enum { MAX_READS = 200000 };
    int timed = !strcmp(cmd, "bench-time"), arg = atoi(argv[2]);
    if (arg <= 0 || arg > (timed ? 600000 : 100000)) { fprintf(stderr, "bad %s\n", timed ? "MS" : "N"); return 2; }
    size_t cap = timed ? MAX_READS : (size_t)arg;
    double end_us = timed ? (double)arg * 1000 : 0;
    path = argv[3];
    double *lat = malloc(sizeof(double) * cap), t0 = now_us();
    if (!lat) return 2;
    int n = 0;
    TCG_MARK(1);
    while (timed ? (now_us() - t0 < end_us && (size_t)n < cap) : n < arg) {
      double s = now_us();
      if (req1(XS_READ, 0, path) < 0) { printf("ERR %s (bench read %d)\n", reply, n); return 1; }
      lat[n++] = now_us() - s;
    }
    TCG_MARK(2);
    double total = now_us() - t0;
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("BENCH n=%d total_us=%.0f mean_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n", n, total,
           total / n, lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
    return 0;
  }
  if (!strcmp(cmd, "idle") && argc == 3) {
    long ms = atol(argv[2]);
    if (ms <= 0 || ms > 600000) { fprintf(stderr, "bad MS\n"); return 2; }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    TCG_MARK(3);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    TCG_MARK(4);
    printf("IDLE ms=%ld\n", ms);
    return 0;
  }
  if (!strcmp(cmd, "rounds") && argc == 4) {
    /* A guest busy with xenstore throughout a live update: every reply checked (an error is counted,
     * the first one kept, and the rounds go on: at most MAX_ERRORS), the stall measured. */
    enum { MAX_ERRORS = 100 };
    char first_err[160] = "";
    double t0 = now_us(), worst = 0;
    long n = 0, errors = 0;
    for (;;) {
      double s = now_us();
      char err[160];
      int r = one_round(path, argv[3], ++n, err, sizeof err);
      if (r < 0) {
        if (errors++ == 0) memcpy(first_err, err, sizeof err);
        if (errors >= MAX_ERRORS) break;
        continue;
      }
      double d = now_us() - s;
      if (d > worst) worst = d;
      if (r > 0) break;
    }
    printf("ROUNDS n=%ld errors=%ld total_us=%.0f max_us=%.0f%s%s\n", n, errors, now_us() - t0, worst,
           errors ? " first_error=" : "", first_err);
    return errors ? 1 : 0;
  }
  fprintf(stderr, "unknown command %s\n", cmd);
  return 2;
}
