/*
 * dxenstored_backend.h: the C ABI of dxenstored's storage modules, version 1.
 *
 * A storage module is a shared object that keeps dxenstored's store: a map (in no particular order)
 * of byte-string keys to byte-string values, changed only by atomic batches. The daemon loads it with
 *
 *     dxenstored --backend so:/path/to/libfoo.so:<args>
 *
 * and calls the functions below (all seven must be exported; `nm -D libfoo.so | grep dxs_`). The
 * daemon checks dxs_backend_abi_version() first: a module built for another version, or missing a
 * symbol, is refused at start with a message naming what is wrong. docs/backends.md ("C modules")
 * has the whole story; src/backend/native.ts is the daemon's side.
 *
 * Life cycle (each call at most once unless said otherwise):
 *
 *     dxs_backend_open                           args from the command line, sync mode
 *     dxs_backend_load_next  (repeated)          stream every stored record, until it returns none
 *     dxs_backend_apply | _sync | _compact  (repeated, any order)
 *     dxs_backend_close
 *
 * THREADS AND BLOCKING. Every call comes from the daemon's one loop thread, never two at once, and
 * the daemon serves nothing while a call runs: a call that blocks (a slow disk, a network store)
 * stalls every client. Do not raise signals, change signal handlers, fork, exit or call into the
 * daemon. A crash inside the module (a bad pointer, abort()) kills the whole daemon: native code runs
 * in the daemon's process and cannot be contained there. The store must then come back intact at
 * the next start (every applied batch is wholly there or wholly absent).
 *
 * BUFFERS. The daemon owns every buffer it passes (args, ops and their keys and values, the load
 * buffer, `used`, `message`); they are valid only during the call, so copy what you keep. The module
 * owns its handle (freed by dxs_backend_close) and everything behind it; nothing the module owns is
 * ever read by the daemon (records are copied into the daemon's buffer by dxs_backend_load_next).
 *
 * ERRORS. Every function but dxs_backend_abi_version returns DXS_OK or one of the DXS_E_* codes, and
 * on failure may write a NUL-terminated message (at most DXS_MESSAGE_MAX bytes including the NUL)
 * into `message`, which the daemon logs and puts in front of the operator. A code the daemon does not
 * know is treated as DXS_E_BROKEN.
 *
 * KEYS AND VALUES are opaque byte strings (they may contain any byte, NUL included; keys are at most
 * DXS_KEY_MAX bytes, values have no fixed limit). The daemon's layout (docs/backends.md): "/path" →
 * the node in Xen's xs_tdb_record_hdr layout, "dxenstored:format", "dxenstored:gen",
 * "dxenstored:domains" → metadata. A module needs none of that: it stores what it is given.
 */
#ifndef DXENSTORED_BACKEND_H
#define DXENSTORED_BACKEND_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Changed whenever anything below changes incompatibly; dxs_backend_abi_version() returns it. */
#define DXS_BACKEND_ABI_VERSION 1u

/* ---- Status codes -------------------------------------------------------------------------------- */

#define DXS_OK 0
/* An I/O failure. apply: the commit is refused, its client gets EIO; open/load: the daemon refuses to
 * start. The store is as it was before the failed call. */
#define DXS_E_IO 1
/* No space (full disk, quota, full map). apply: the commit is refused with ENOSPC, the daemon keeps
 * serving and later commits are tried again. */
#define DXS_E_NOSPC 2
/* open/load: the stored data is damaged. The daemon refuses to start. */
#define DXS_E_CORRUPT 3
/* open: the store is in use (another daemon holds it). The daemon refuses to start. */
#define DXS_E_BUSY 4
/* open: bad <args>, or a sync mode this module does not offer (say which in the message). */
#define DXS_E_INVAL 5
/* load_next only: the next record alone does not fit into `cap` bytes; set *used to its size
 * (dxs_record_size) and the daemon calls again with a buffer at least that large. */
#define DXS_E_RANGE 6
/* Out of memory. Treated like DXS_E_IO. */
#define DXS_E_NOMEM 7
/* apply/sync/compact: the call failed AND the store's state is no longer known (a rollback failed,
 * the library reports a fatal error). The daemon refuses every later commit with EIO (group mode:
 * stops, as for a failed sync) and calls only dxs_backend_close. */
#define DXS_E_BROKEN 8

/* Size of the `message` buffer every call gets (bytes, including the terminating NUL). */
#define DXS_MESSAGE_MAX 512
/* Longest key the daemon passes (a node path is at most 3072 bytes). */
#define DXS_KEY_MAX 4096

/* ---- Open flags ---------------------------------------------------------------------------------- */

/* The low byte of `flags` is the sync mode (--sync). In every mode each batch is atomic, and after a
 * crash of the daemon (SIGKILL) the store holds a prefix of the applied batches, in order:
 *
 *   DXS_SYNC_ALWAYS  apply returns only once the batch is on stable storage (survives power loss).
 *                    dxs_backend_sync is not called.
 *   DXS_SYNC_GROUP   apply stores the batch (so that a full disk fails this batch alone, and a failed
 *                    batch leaves the others applied) but need not make it durable; dxs_backend_sync
 *                    makes every batch applied so far durable. The daemon sends no reply that
 *                    depends on a batch before the sync covering it has returned DXS_OK, so batches
 *                    applied after the last sync may be lost in a crash (a suffix, never one in the
 *                    middle). A failed sync stops the daemon.
 *   DXS_SYNC_NONE    apply stores the batch so that it survives the daemon's death (the page cache
 *                    is enough); the OS decides when it reaches the disk. dxs_backend_sync is not
 *                    called; dxs_backend_close makes everything durable.
 *
 * A module that cannot honour the mode asked for returns DXS_E_INVAL from open, saying so. */
#define DXS_SYNC_ALWAYS 0u
#define DXS_SYNC_GROUP 1u
#define DXS_SYNC_NONE 2u
#define DXS_SYNC_MASK 0xffu
/* --recover: start from whatever can be read of a damaged store instead of refusing (optional:
 * a module without a recovery procedure ignores it). */
#define DXS_OPEN_RECOVER 0x100u

/* ---- Batches ------------------------------------------------------------------------------------- */

#define DXS_OP_PUT 1u    /* set key to value (create or replace) */
#define DXS_OP_DELETE 2u /* remove key; a missing key is not an error */

/* One operation of a batch. 32 bytes on LP64, no padding. */
struct dxs_op {
    const uint8_t *key;   /* key_len bytes, not NUL-terminated; owned by the daemon */
    const uint8_t *value; /* value_len bytes (PUT; may be NULL when value_len is 0; DELETE: NULL) */
    uint32_t key_len;     /* 1 .. DXS_KEY_MAX */
    uint32_t value_len;
    uint32_t kind;        /* DXS_OP_PUT or DXS_OP_DELETE */
    uint32_t reserved;    /* 0 */
};

/* The module's state, defined by the module. */
typedef struct dxs_backend dxs_backend;

/* ---- The functions a module exports -------------------------------------------------------------- */

/* Return DXS_BACKEND_ABI_VERSION (as compiled into the module). Called before anything else. */
uint32_t dxs_backend_abi_version(void);

/* Open (create if missing) the store named by `args` (the text after the library's path and a colon
 * on the command line, "" if none; NUL-terminated; relative paths are the daemon's working directory's,
 * which is where it was started). `flags`: a DXS_SYNC_* mode | DXS_OPEN_RECOVER. On DXS_OK store the
 * handle in *out; on failure leave *out alone and release everything. One daemon per store: refuse a
 * second opener with DXS_E_BUSY (e.g. flock()). */
int dxs_backend_open(const char *args, uint32_t flags, dxs_backend **out, char *message);

/* Copy the next stored records into buf[0 .. cap), each packed as
 *
 *     u32 key_len, u32 value_len (little-endian), key bytes, value bytes      (dxs_pack_record below)
 *
 * as many whole records as fit, and set *used to the bytes written. *used == 0 with DXS_OK means every
 * record has been returned (then load_next is not called again). Each stored key exactly once, in any
 * order. Called only after open, before any apply, until it returns 0 bytes or an error; a store that
 * holds nothing returns 0 bytes at once (the daemon then writes the initial tree as a first batch). */
int dxs_backend_load_next(dxs_backend *be, uint8_t *buf, size_t cap, size_t *used, char *message);

/* Apply `count` operations, in order, as ONE atomic change: after DXS_OK all of them are stored (made
 * durable as the sync mode says); after an error none is (the store is as before the call), unless the
 * error is DXS_E_BROKEN. Every committed change set of the daemon (a write, a whole transaction, a new
 * set of introduced domains, the initial tree of a new store) is one batch. */
int dxs_backend_apply(dxs_backend *be, const struct dxs_op *ops, uint32_t count, char *message);

/* Make every batch applied so far durable (DXS_SYNC_GROUP: the group's one sync). DXS_OK with nothing
 * pending is fine. A failure (any code) stops the daemon before any reply covered by it is sent. */
int dxs_backend_sync(dxs_backend *be, char *message);

/* Rewrite the store compactly if that pays off (an append-only log rewritten as a snapshot); may do
 * nothing. Called once max(DXS_COMPACT_BYTES, twice the bytes loaded at start) of keys and values have
 * been applied since the last call; in DXS_SYNC_GROUP mode only right after a successful sync, so no
 * batch is pending then. A failure is logged and the daemon goes on using the store as it is, so a
 * failed compaction must leave it usable (or return DXS_E_BROKEN). */
int dxs_backend_compact(dxs_backend *be, char *message);

/* Make everything durable and release the store and `be` (also after errors; `be` is not used again).
 * A failure is logged (the daemon is stopping). */
int dxs_backend_close(dxs_backend *be, char *message);

/* Bytes of applied batches (keys + values) after which the daemon calls dxs_backend_compact, at least. */
#define DXS_COMPACT_BYTES (4u << 20)

/* ---- Helpers for modules (static inline: nothing to link) ---------------------------------------- */

/* Size of one packed record in the load buffer. */
static inline size_t dxs_record_size(size_t key_len, size_t value_len)
{
    return 8 + key_len + value_len;
}

static inline void dxs_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Append one record to the load buffer if it fits: returns 1 (and advances *used) or 0 (nothing
 * written: return what is there, or DXS_E_RANGE with *used = dxs_record_size(...) if *used is 0). */
static inline int dxs_pack_record(uint8_t *buf, size_t cap, size_t *used, const void *key, uint32_t key_len,
                                  const void *value, uint32_t value_len)
{
    size_t need = dxs_record_size(key_len, value_len);
    if (*used > cap || cap - *used < need)
        return 0;
    uint8_t *p = buf + *used;
    dxs_put_u32le(p, key_len);
    dxs_put_u32le(p + 4, value_len);
    if (key_len)
        memcpy(p + 8, key, key_len);
    if (value_len)
        memcpy(p + 8 + key_len, value, value_len);
    *used += need;
    return 1;
}

/* printf into the message buffer (truncated to DXS_MESSAGE_MAX, always NUL-terminated); returns
 * `code`, so that `return dxs_fail(message, DXS_E_IO, "write %s: %s", path, strerror(errno));`. */
static inline int dxs_fail(char *message, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int dxs_fail(char *message, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, DXS_MESSAGE_MAX, fmt, ap);
    va_end(ap);
    return code;
}

#ifdef __cplusplus
}
#endif

#endif /* DXENSTORED_BACKEND_H */
