/*
 * tcgcount: a QEMU TCG plugin (QEMU 7.2, plugin API version 1) that counts what the emulation of a
 * real-Xen E2E boot does, by the virtual address class of the code (docs/domains.md, "What TCG
 * emulates per guest READ"). Built and wired in by `deno task e2e:xen --tcg-counts`
 * (e2e/xen/tcg_plugin/build.sh); the parser is e2e/xen/tcg_counts.ts.
 *
 * Counted, cumulative, per class (user below 4 GiB / user / Linux kernel / Xen / other):
 *   insn      instructions executed (a TB's instruction count at each of its executions)
 *   tbexec    translation blocks executed
 *   tbtrans   translation blocks translated (QEMU translates again after a write to a code page,
 *             after a flush of its code cache, or when a TB is looked up with other flags)
 *   transinsn instructions translated
 *   entry     entries into Xen's code from this class (the previous TB on the vCPU was of this class)
 *   modesw    switches into this class from the other guest mode through Xen (user <-> kernel: in a
 *             64-bit PV guest each is a page-table switch, after which QEMU's soft TLB is empty)
 *   cpage     code pages entered for the first time since the vCPU's last mode switch (a proxy
 *             for the instruction-side soft-TLB refills those switches cost)
 *   pause     PAUSE instructions executed (spin-wait loops: time, not work)
 *   spins     spin-waits: PAUSEs more than SPIN_GAP TB executions after the vCPU's previous one (how
 *             often a vCPU waited for the other, whatever the wait lasted)
 *   retrans   translations of a TB at an address (and of a length) translated before: code QEMU
 *             threw away and translated again (a write to its page, a code-cache flush), where the
 *             rest of tbtrans is code seen for the first time
 * and, at marks and at exit only, instructions per class and 64 MiB bucket of the code's guest
 * physical address (which domain's memory the code is in: dom0's and a guest's kernels share
 * their virtual addresses).
 *
 * With hot=1, every mark also writes an "rt" line per user-space address translated again since the previous
 * mark (virtual address, instructions, cumulative translations again: one invalidation of a page's code,
 * or the same code invalidated over and over), and a "tb" line per kernel or Xen TB executed since the previous mark
 * (record number, class, virtual address, instructions, cumulative executions, cumulative spin-waits
 * begun at a PAUSE in it): where a window's kernel and Xen
 * instructions went (the Linux kernel's System.map names them).
 *
 * Output (file given by out=PATH): "snap" lines every ~100 ms of host time (why=tick), at every
 * executed mark instruction (why=mark:K) and at exit (why=exit). A mark is the 8-byte NOP
 * `nopl 0x58434dKK(%rax,%rax,1)` (0f 1f 84 00 KK 4d 43 58): a no-op without this plugin, so the
 * guest's benchmark can carry it always (tests/xen/qemu/guest/xse2e.c).
 *
 * The few API declarations it needs are written out below (QEMU ships no header in Debian).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- QEMU plugin API, version 1 (QEMU 6.0 .. 8.0) */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
  const char *target_name;
  struct {
    int min, cur;
  } version;
  bool system_emulation;
  union {
    struct {
      int smp_vcpus, max_vcpus;
    } system;
  };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_simple_cb_t)(qemu_plugin_id_t id);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_flush_cb(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void *qemu_plugin_insn_haddr(const struct qemu_plugin_insn *insn);
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* ---- classes of a TB's virtual address (x86-64: Xen reserves 0xffff800000000000-0xffff87ffffffffff
 * for itself in every PV guest's address space; its text is at 0xffff82d040000000) */
enum { C_USER_LOW, C_USER, C_KERNEL, C_XEN, C_OTHER, N_CLASSES };
static const char *const CLASS_NAMES = "user_low,user,kernel,xen,other";

static int classify(uint64_t va) {
  if (va < 0x100000000ull) return C_USER_LOW;      /* non-PIE executables: dom0's static busybox, the guest's xse2e */
  if (va < 0x0000800000000000ull) return C_USER;
  if (va >= 0xffff800000000000ull && va < 0xffff880000000000ull) return C_XEN;
  if (va >= 0xffffffff80000000ull) return C_KERNEL; /* kernel text, modules, fixmap */
  return C_OTHER;
}

enum { N_BUCKETS = 64, BUCKET_SHIFT = 26, NO_BUCKET = N_BUCKETS - 1 }; /* 64 MiB of guest RAM each; the last:
                                                                         * code outside RAM (ROMs) */
enum { PAGE_SLOTS = 4096 };

/* One vCPU's counters: written by its own thread only, read by the dump thread. */
typedef struct {
  uint64_t insn[N_CLASSES], tbexec[N_CLASSES], entry[N_CLASSES], modesw[N_CLASSES], cpage[N_CLASSES];
  uint64_t pause[N_CLASSES], spins[N_CLASSES];
  uint64_t tbs_run, tbs_at_pause;
  uint64_t bucket_insn[N_CLASSES][N_BUCKETS];
  int last_class, last_mode;
  uint64_t epoch;
  uint64_t page_seen[PAGE_SLOTS]; /* page << 20 | epoch & 0xfffff, direct-mapped */
} __attribute__((aligned(64))) vcpu_counts;

static vcpu_counts *vcpus;
static int n_vcpus;
static uint64_t tbtrans[N_CLASSES], transinsn[N_CLASSES], retrans[N_CLASSES], flushes; /* atomics */

/* addresses translated so far (retrans): open addressing on vaddr ^ length, under a lock (a boot
 * translates a few hundred thousand TBs) */
enum { SEEN_SLOTS = 1 << 22 };
static FILE *out; /* defined with the output's lock below */
static uint64_t *seen;
static uint32_t *seen_again, *seen_again_dumped; /* hot=1: user-space translations again, per slot */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static bool seen_before(uint64_t vaddr, size_t n, bool count_again) {
  uint64_t key = vaddr << 10 | (n & 511) << 1 | 1; /* 0 marks an empty slot */
  bool found = false;
  pthread_mutex_lock(&seen_lock);
  for (uint64_t i = (key * 0x9e3779b97f4a7c15ull) >> 42, probes = 0; probes < 64; i = (i + 1) & (SEEN_SLOTS - 1), probes++) {
    if (seen[i] == key) {
      found = true;
      if (count_again && seen_again) seen_again[i]++;
      break;
    }
    if (seen[i] == 0) { seen[i] = key; break; }
  }
  pthread_mutex_unlock(&seen_lock);
  return found;
}

/* hot=1: the user-space addresses translated again since the last dump (called with out_lock held) */
static void dump_again(void) {
  if (!seen_again) return;
  pthread_mutex_lock(&seen_lock);
  for (size_t i = 0; i < SEEN_SLOTS; i++) {
    if (seen_again[i] == seen_again_dumped[i]) continue;
    fprintf(out, "rt %" PRIx64 " %u %u\n", seen[i] >> 10, (unsigned)(seen[i] >> 1 & 511), seen_again[i]);
    seen_again_dumped[i] = seen_again[i];
  }
  pthread_mutex_unlock(&seen_lock);
}
static FILE *out;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tick_ms = 100;
static volatile bool stopping;
static pthread_t ticker;

/* hot=1: one record per translated kernel or Xen TB, its executions counted inline (two vCPUs running
 * the same TB at once may lose a count: a hotspot list, not a total) */
typedef struct {
  uint64_t vaddr, execs, dumped, spins;
  uint32_t n_insns;
  int cls;
  char *disas; /* Xen's TBs: their instructions (Xen's image has no symbols), printed once */
} tb_record;
static bool hot;
static tb_record **records;
static size_t n_records, cap_records;
static pthread_mutex_t records_lock = PTHREAD_MUTEX_INITIALIZER;

static tb_record *new_record(uint64_t vaddr, size_t n, int cls) {
  tb_record *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->vaddr = vaddr;
  r->n_insns = (uint32_t)n;
  r->cls = cls;
  pthread_mutex_lock(&records_lock);
  if (n_records == cap_records) {
    size_t cap = cap_records ? cap_records * 2 : 65536;
    tb_record **grown = realloc(records, cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&records_lock);
      free(r);
      return NULL;
    }
    records = grown;
    cap_records = cap;
  }
  records[n_records++] = r;
  pthread_mutex_unlock(&records_lock);
  return r;
}

/* the records executed since the last dump (called with out_lock held) */
static void dump_records(void) {
  pthread_mutex_lock(&records_lock);
  for (size_t i = 0; i < n_records; i++) {
    tb_record *r = records[i];
    uint64_t e = __atomic_load_n(&r->execs, __ATOMIC_RELAXED);
    if (e == r->dumped) continue;
    fprintf(out, "tb %zu %d %" PRIx64 " %u %" PRIu64 " %" PRIu64 "\n", i, r->cls, r->vaddr, r->n_insns, e,
            __atomic_load_n(&r->spins, __ATOMIC_RELAXED));
    if (r->disas) {
      fprintf(out, "tbdis %zu %s\n", i, r->disas);
      free(r->disas);
      r->disas = NULL;
    }
    r->dumped = e;
  }
  pthread_mutex_unlock(&records_lock);
}

/* guest RAM's host mapping: the largest private read-write anonymous mapping of QEMU's process
 * once the machine runs (QEMU's code buffer is executable, ROMs are small) */
static uintptr_t ram_base, ram_end;
static pthread_once_t ram_once = PTHREAD_ONCE_INIT;

static void find_ram(void) {
  FILE *m = fopen("/proc/self/maps", "r");
  char line[512];
  if (!m) return;
  while (fgets(line, sizeof line, m)) {
    uintptr_t lo, hi;
    char perms[8];
    unsigned long long offset;
    int path_at = 0;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %*s %*s %n", &lo, &hi, perms, &offset, &path_at) < 4) continue;
    bool anonymous = path_at == 0 || line[path_at] == '\n' || line[path_at] == '\0';
    if (strcmp(perms, "rw-p") == 0 && anonymous && hi - lo > ram_end - ram_base) {
      ram_base = lo;
      ram_end = hi;
    }
  }
  fclose(m);
}

static int bucket_of(void *haddr) {
  if (!haddr) return NO_BUCKET;
  pthread_once(&ram_once, find_ram);
  uintptr_t h = (uintptr_t)haddr;
  if (h < ram_base || h >= ram_end) return NO_BUCKET;
  uint64_t b = (uint64_t)(h - ram_base) >> BUCKET_SHIFT;
  return b < NO_BUCKET ? (int)b : NO_BUCKET;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void bump(uint64_t *p, uint64_t by) { __atomic_store_n(p, *p + by, __ATOMIC_RELAXED); }

static void put_row(const char *name, const uint64_t *v) {
  fprintf(out, " %s=", name);
  for (int c = 0; c < N_CLASSES; c++) fprintf(out, c ? ",%" PRIu64 : "%" PRIu64, v[c]);
}

#define SUM_FIELD(field, into)                                                   \
  do {                                                                           \
    for (int c = 0; c < N_CLASSES; c++) {                                        \
      into[c] = 0;                                                               \
      for (int v = 0; v < n_vcpus; v++) into[c] += load(&vcpus[v].field[c]);     \
    }                                                                            \
  } while (0)

/* One snapshot line; with_buckets adds instructions per class and guest-RAM bucket. */
static void snapshot(const char *why, bool with_buckets) {
  uint64_t insn[N_CLASSES], tbexec[N_CLASSES], entry[N_CLASSES], modesw[N_CLASSES], cpage[N_CLASSES];
  uint64_t pause[N_CLASSES], spins[N_CLASSES], tr[N_CLASSES], ti[N_CLASSES], rt[N_CLASSES];
  uint64_t t = now_ns();
  SUM_FIELD(insn, insn);
  SUM_FIELD(tbexec, tbexec);
  SUM_FIELD(entry, entry);
  SUM_FIELD(modesw, modesw);
  SUM_FIELD(cpage, cpage);
  SUM_FIELD(pause, pause);
  SUM_FIELD(spins, spins);
  for (int c = 0; c < N_CLASSES; c++) {
    tr[c] = load(&tbtrans[c]);
    ti[c] = load(&transinsn[c]);
    rt[c] = load(&retrans[c]);
  }
  pthread_mutex_lock(&out_lock);
  if (out) {
    fprintf(out, "snap t_ns=%" PRIu64 " why=%s", t, why);
    put_row("insn", insn);
    put_row("tbexec", tbexec);
    put_row("tbtrans", tr);
    put_row("transinsn", ti);
    put_row("retrans", rt);
    put_row("entry", entry);
    put_row("modesw", modesw);
    put_row("cpage", cpage);
    put_row("pause", pause);
    put_row("spins", spins);
    fprintf(out, " flushes=%" PRIu64, load(&flushes));
    if (with_buckets) {
      for (int c = 0; c < N_CLASSES; c++) {
        fprintf(out, " bucket_%d=", c);
        for (int b = 0; b < N_BUCKETS; b++) {
          uint64_t s = 0;
          for (int v = 0; v < n_vcpus; v++) s += load(&vcpus[v].bucket_insn[c][b]);
          fprintf(out, b ? ",%" PRIu64 : "%" PRIu64, s);
        }
      }
    }
    fputc('\n', out);
    if (with_buckets && hot) {
      dump_records();
      dump_again();
    }
    fflush(out);
  }
  pthread_mutex_unlock(&out_lock);
}

/* udata of a TB: class (3 bits) | instructions (10 bits: TCG stops a TB at 512) | bucket (6 bits) |
 * virtual page (36 bits of a canonical 48-bit address) */
static inline void *pack(int cls, size_t n, int bucket, uint64_t va) {
  return (void *)(uintptr_t)((uint64_t)cls | (uint64_t)n << 3 | (uint64_t)bucket << 13 |
                             ((va >> 12) & 0xfffffffffull) << 19);
}

static void on_tb_exec(unsigned int vcpu_index, void *udata) {
  if ((int)vcpu_index >= n_vcpus) return;
  vcpu_counts *v = &vcpus[vcpu_index];
  uint64_t u = (uint64_t)(uintptr_t)udata;
  int cls = (int)(u & 7), bucket = (int)(u >> 13 & 63);
  uint64_t n = u >> 3 & 1023, page = u >> 19;
  v->tbs_run++;
  bump(&v->insn[cls], n);
  bump(&v->tbexec[cls], 1);
  bump(&v->bucket_insn[cls][bucket], n);
  if (cls == C_XEN) {
    if (v->last_class != C_XEN) bump(&v->entry[v->last_class], 1);
  } else {
    int mode = cls == C_KERNEL ? C_KERNEL : C_USER; /* other: rare, counted with user */
    if (mode != v->last_mode) {
      bump(&v->modesw[cls], 1);
      v->last_mode = mode;
      v->epoch++;
    }
    uint64_t tag = page << 20 | (v->epoch & 0xfffff);
    uint64_t *slot = &v->page_seen[(page ^ page >> 12) & (PAGE_SLOTS - 1)];
    if (*slot != tag) {
      *slot = tag;
      bump(&v->cpage[cls], 1);
    }
  }
  v->last_class = cls;
}

/* A spin loop's iteration is a few TBs (a lock's: 2; a wait on a CPU mask: about 8); more than this
 * since the previous PAUSE and the vCPU did something else in between. */
enum { SPIN_GAP = 64 };

static bool count_pause(unsigned int vcpu_index, int cls) {
  if ((int)vcpu_index >= n_vcpus) return false;
  vcpu_counts *v = &vcpus[vcpu_index];
  bump(&v->pause[cls], 1);
  bool begins = v->tbs_run - v->tbs_at_pause > SPIN_GAP;
  if (begins) bump(&v->spins[cls], 1);
  v->tbs_at_pause = v->tbs_run;
  return begins;
}

static void on_pause(unsigned int vcpu_index, void *udata) { count_pause(vcpu_index, (int)(uintptr_t)udata); }

static void on_pause_in_record(unsigned int vcpu_index, void *udata) {
  tb_record *r = udata;
  if (count_pause(vcpu_index, r->cls)) __atomic_fetch_add(&r->spins, 1, __ATOMIC_RELAXED);
}

static void on_mark(unsigned int vcpu_index, void *udata) {
  char why[32];
  (void)vcpu_index;
  snprintf(why, sizeof why, "mark:%u", (unsigned)(uintptr_t)udata);
  snapshot(why, true);
}

static const uint8_t MARK_PREFIX[4] = {0x0f, 0x1f, 0x84, 0x00}, MARK_SUFFIX[3] = {0x4d, 0x43, 0x58};

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  uint64_t va = qemu_plugin_tb_vaddr(tb);
  int cls = classify(va);
  int bucket = n > 0 ? bucket_of(qemu_plugin_insn_haddr(qemu_plugin_tb_get_insn(tb, 0))) : NO_BUCKET;
  __atomic_fetch_add(&tbtrans[cls], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&transinsn[cls], n, __ATOMIC_RELAXED);
  if (seen_before(va, n, cls == C_USER || cls == C_USER_LOW)) __atomic_fetch_add(&retrans[cls], 1, __ATOMIC_RELAXED);
  qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, pack(cls, n, bucket, va));
  tb_record *r = NULL;
  if (hot && (cls == C_KERNEL || cls == C_XEN)) {
    r = new_record(va, n, cls);
    if (r) qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &r->execs, 1);
    if (r && cls == C_XEN) {
      char buf[512];
      size_t used = 0;
      for (size_t i = 0; i < n && used < sizeof buf - 1; i++) {
        char *d = qemu_plugin_insn_disas(qemu_plugin_tb_get_insn(tb, i));
        int w = snprintf(buf + used, sizeof buf - used, "%s%s", i ? "; " : "", d ? d : "?");
        free(d);
        if (w < 0) break;
        used += (size_t)w;
      }
      buf[sizeof buf - 1] = '\0';
      r->disas = strdup(buf);
    }
  }
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    const uint8_t *d = qemu_plugin_insn_data(insn);
    size_t len = qemu_plugin_insn_size(insn);
    if (len == 2 && d[0] == 0xf3 && d[1] == 0x90) {
      if (r) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_pause_in_record, QEMU_PLUGIN_CB_NO_REGS, r);
      else qemu_plugin_register_vcpu_insn_exec_cb(insn, on_pause, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)cls);
    }
    if (len == 8 && memcmp(d, MARK_PREFIX, 4) == 0 && memcmp(d + 5, MARK_SUFFIX, 3) == 0) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)d[4]);
    }
  }
}

static void on_flush(qemu_plugin_id_t id) {
  (void)id;
  __atomic_fetch_add(&flushes, 1, __ATOMIC_RELAXED);
}

static void *tick_loop(void *arg) {
  (void)arg;
  struct timespec ts = {(time_t)(tick_ms / 1000), (long)(tick_ms % 1000) * 1000000L};
  while (!stopping) {
    nanosleep(&ts, NULL);
    if (!stopping) snapshot("tick", false);
  }
  return NULL;
}

static void on_qemu_exit(qemu_plugin_id_t id, void *p) {
  (void)id;
  (void)p;
  stopping = true;
  pthread_join(ticker, NULL);
  snapshot("exit", true);
  pthread_mutex_lock(&out_lock);
  fclose(out);
  out = NULL;
  pthread_mutex_unlock(&out_lock);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                                int argc, char **argv) {
  const char *path = NULL;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "out=", 4) == 0) path = argv[i] + 4;
    else if (strncmp(argv[i], "tick_ms=", 8) == 0) tick_ms = strtoull(argv[i] + 8, NULL, 10);
    else if (strcmp(argv[i], "hot=1") == 0) hot = true;
    else {
      fprintf(stderr, "tcgcount: unknown argument %s (out=PATH, tick_ms=N, hot=1)\n", argv[i]);
      return -1;
    }
  }
  if (!path || !info->system_emulation || tick_ms == 0) {
    fprintf(stderr, "tcgcount: needs out=PATH and system emulation\n");
    return -1;
  }
  out = fopen(path, "w");
  if (!out) {
    perror(path);
    return -1;
  }
  seen = calloc(SEEN_SLOTS, sizeof *seen);
  if (!seen) return -1;
  if (hot) {
    seen_again = calloc(SEEN_SLOTS, sizeof *seen_again);
    seen_again_dumped = calloc(SEEN_SLOTS, sizeof *seen_again_dumped);
    if (!seen_again || !seen_again_dumped) return -1;
  }
  n_vcpus = info->system.max_vcpus;
  vcpus = aligned_alloc(64, sizeof(vcpu_counts) * (size_t)n_vcpus);
  if (!vcpus) return -1;
  memset(vcpus, 0, sizeof(vcpu_counts) * (size_t)n_vcpus);
  for (int v = 0; v < n_vcpus; v++) vcpus[v].last_class = vcpus[v].last_mode = C_KERNEL;
  fprintf(out, "tcgcount v1 target=%s vcpus=%d classes=%s buckets=%d bucket_shift=%d tick_ms=%" PRIu64 "\n",
          info->target_name, n_vcpus, CLASS_NAMES, N_BUCKETS, BUCKET_SHIFT, tick_ms);
  fflush(out);
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
  qemu_plugin_register_flush_cb(id, on_flush);
  qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
  if (pthread_create(&ticker, NULL, tick_loop, NULL) != 0) return -1;
  return 0;
}
