/*
 * tlb_probe: what a system call costs in this dom0 as a function of the pages a process touches
 * between two calls (docs/domains.md, "Third pass"). Run by dom0's init (plan B) before any guest.
 *
 * The question: in a 64-bit PV dom0 every kernel entry switches page tables through Xen, and under
 * QEMU TCG a page-table switch empties QEMU's software TLB; if so, the pages touched after each call
 * are walked again, and a call costs more the more pages the process touches between calls. So for
 * K pages (one byte read per page, 4 KiB apart) it times a loop of "touch K pages" with and without
 * one getppid() per iteration; the difference is the call's cost at that working set. It also times
 * clock_gettime for CLOCK_MONOTONIC and CLOCK_MONOTONIC_COARSE (is either served by the vDSO here?).
 *
 * Output: one line per measurement, "TLB-PROBE what=... pages=K ns=N" (ns per iteration).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_PAGES 4096
#define SLICE_NS 300000000LL /* each measurement runs ~0.3 s */

static volatile uint8_t *buf;
static volatile uint64_t sink;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void touch(int pages) {
  uint64_t s = 0;
  for (int p = 0; p < pages; p++) s += buf[(size_t)p * PAGE + (p & 63) * 64];
  sink += s;
}

/* ns per iteration of: touch `pages`, then `calls` getppid() */
static double loop_ns(int pages, int calls) {
  int64_t iters = 0, t0 = now_ns(), t;
  do {
    for (int i = 0; i < 64; i++) {
      touch(pages);
      for (int c = 0; c < calls; c++) sink += (uint64_t)syscall(SYS_getppid);
    }
    iters += 64;
    t = now_ns();
  } while (t - t0 < SLICE_NS);
  return (double)(t - t0) / (double)iters;
}

static double clock_ns(clockid_t id) {
  int64_t iters = 0, t0 = now_ns(), t;
  struct timespec ts;
  do {
    for (int i = 0; i < 64; i++) {
      clock_gettime(id, &ts);
      sink += (uint64_t)ts.tv_nsec;
    }
    iters += 64;
    t = now_ns();
  } while (t - t0 < SLICE_NS);
  return (double)(t - t0) / (double)iters;
}

int main(void) {
  buf = mmap(NULL, (size_t)MAX_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return 1;
  for (size_t i = 0; i < (size_t)MAX_PAGES * PAGE; i += PAGE) buf[i] = (uint8_t)i;
  printf("TLB-PROBE what=clock_monotonic ns=%.0f\n", clock_ns(CLOCK_MONOTONIC));
  printf("TLB-PROBE what=clock_monotonic_coarse ns=%.0f\n", clock_ns(CLOCK_MONOTONIC_COARSE));
  static const int ks[] = {0, 16, 64, 256, 1024, 4096};
  for (unsigned i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    double without = loop_ns(ks[i], 0), with = loop_ns(ks[i], 1), with4 = loop_ns(ks[i], 4);
    printf("TLB-PROBE what=touch pages=%d ns=%.0f\n", ks[i], without);
    printf("TLB-PROBE what=touch+getppid pages=%d ns=%.0f call_ns=%.0f\n", ks[i], with, with - without);
    printf("TLB-PROBE what=touch+4getppid pages=%d ns=%.0f call_ns=%.0f\n", ks[i], with4,
           (with4 - without) / 4);
    fflush(stdout);
  }
  return 0;
}
