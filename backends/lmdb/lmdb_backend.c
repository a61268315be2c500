/*
 * LMDB as a dxenstored storage module (ffi/dxenstored_backend.h, docs/backends.md "lmdb").
 *
 *     dxenstored --backend so:build/backends/liblmdb_backend.so:<dir>[,map=<MiB>]
 *
 * <dir>/data.mdb holds two LMDB databases: "keys" maps each key to its value; keys longer than LMDB's
 * limit (mdb_env_get_maxkeysize, 511 bytes in Debian's build; a node path may have 3072) go to
 * "long_keys" under a 20-byte digest (two 64-bit hashes and the length), with the full key stored in
 * front of the value, so that load returns it and a digest shared by two keys is detected and refused
 * (never one key overwriting another). <dir>/lock is flock()ed while a daemon uses the store, which is
 * why LMDB runs with MDB_NOLOCK (no lock.mdb, no stale reader slots after a SIGKILL).
 *
 * Sync modes:
 *   always  one LMDB write transaction per batch, committed with LMDB's default durability (data
 *           pages, fdatasync, then the meta page through an O_DSYNC descriptor).
 *   group   the batches of a group are child transactions of one parent write transaction
 *           (mdb_txn_begin with a parent): a failing batch is aborted alone, and dxs_backend_sync
 *           commits the parent, durably. Nothing reaches the file before that commit, so a crash
 *           loses exactly the unsynced group, whose replies the daemon has not sent.
 *   none    MDB_NOSYNC: one transaction per batch, no fdatasync (survives the daemon's death through
 *           the page cache; LMDB's documentation warns that a power loss can then damage the file).
 *
 * LMDB reuses freed pages itself, so compaction has nothing to do. The map (the largest the file may
 * grow) is 1024 MiB unless map=<MiB> says otherwise; a full map is DXS_E_NOSPC. A file that is not
 * LMDB's, or is shorter than its last page, is DXS_E_CORRUPT (the daemon refuses to start).
 */
#include "dxenstored_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DEFAULT_MAP_MIB 1024u
#define DIGEST_LEN 20

struct dxs_backend {
    MDB_env *env;
    MDB_dbi keys, long_keys;
    unsigned sync_mode;
    size_t max_key;
    MDB_txn *group; /* group mode: the parent transaction of the batches applied since the last sync */
    int lock_fd;
    int broken;
    /* load: a read transaction walking keys, then long_keys */
    MDB_txn *load_txn;
    MDB_cursor *load_cur;
    int load_stage;     /* 0: keys, 1: long_keys, 2: done */
    int load_started;   /* the cursor of this stage has been positioned */
    int load_holding;   /* the cursor's current record has not been returned yet */
};

uint32_t dxs_backend_abi_version(void)
{
    return DXS_BACKEND_ABI_VERSION;
}

/* Less than this left on the store's file system: an EIO from a write is taken for a full disk. */
#define LOW_SPACE (4u << 20)

/* LMDB reports a short write (the disk filled up in the middle of one) as EIO: look at the space left. */
static int disk_nearly_full(const dxs_backend *be)
{
    struct statvfs st;
    return be && fstatvfs(be->lock_fd, &st) == 0 && (uint64_t)st.f_bavail * st.f_frsize < LOW_SPACE;
}

/* A failed LMDB call as a status code and message (`be`: NULL before the store is open). */
static int lmdb_fail(const dxs_backend *be, char *message, int rc, const char *what)
{
    int code = DXS_E_IO;
    if (rc == EIO && disk_nearly_full(be))
        return dxs_fail(message, DXS_E_NOSPC, "lmdb: %s: no space left on the file system (%s)", what,
                        mdb_strerror(rc));
    if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT)
        code = DXS_E_NOSPC;
    else if (rc == MDB_PANIC || rc == MDB_BAD_TXN)
        code = DXS_E_BROKEN;
    else if (rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_PAGE_NOTFOUND)
        code = DXS_E_CORRUPT;
    else if (rc == ENOMEM)
        code = DXS_E_NOMEM;
    return dxs_fail(message, code, "lmdb: %s: %s", what, mdb_strerror(rc));
}

/* mkdir -p */
static int make_dirs(const char *dir, char *message)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return dxs_fail(message, DXS_E_INVAL, "lmdb: bad directory \"%s\"", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return dxs_fail(message, DXS_E_IO, "lmdb: mkdir %s: %s", path, strerror(errno));
        path[i] = c;
    }
    return DXS_OK;
}

/* Two independent 64-bit hashes (FNV-1a and a multiply-rotate mix) and the length: the key of a
 * record in long_keys. A shared digest is detected on write (the full key is stored), not trusted. */
static void digest(const uint8_t *key, uint32_t len, uint8_t out[DIGEST_LEN])
{
    uint64_t a = 0xcbf29ce484222325ull, b = 0x9e3779b97f4a7c15ull ^ len;
    for (uint32_t i = 0; i < len; i++) {
        a = (a ^ key[i]) * 0x100000001b3ull;
        b = (b ^ key[i]) * 0xff51afd7ed558ccdull;
        b = (b << 31) | (b >> 33);
    }
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(a >> (8 * i));
        out[8 + i] = (uint8_t)(b >> (8 * i));
    }
    dxs_put_u32le(out + 16, len);
}

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int dxs_backend_open(const char *args, uint32_t flags, dxs_backend **out, char *message)
{
    char dir[4096];
    unsigned map_mib = DEFAULT_MAP_MIB;
    const char *comma = strstr(args, ",map=");
    size_t dir_len = comma ? (size_t)(comma - args) : strlen(args);
    if (comma) {
        char *end;
        unsigned long v = strtoul(comma + 5, &end, 10);
        if (*end != '\0' || v == 0 || v > (1ul << 20))
            return dxs_fail(message, DXS_E_INVAL, "lmdb: bad map size in \"%s\" (map=<MiB>)", args);
        map_mib = (unsigned)v;
    }
    if (dir_len == 0 || dir_len >= sizeof(dir))
        return dxs_fail(message, DXS_E_INVAL, "lmdb: usage: so:<library>:<dir>[,map=<MiB>]");
    memcpy(dir, args, dir_len);
    dir[dir_len] = '\0';
    unsigned mode = flags & DXS_SYNC_MASK;
    if (mode != DXS_SYNC_ALWAYS && mode != DXS_SYNC_GROUP && mode != DXS_SYNC_NONE)
        return dxs_fail(message, DXS_E_INVAL, "lmdb: unknown sync mode %u", mode);
    int rc = make_dirs(dir, message);
    if (rc != DXS_OK)
        return rc;

    struct dxs_backend *be = calloc(1, sizeof(*be));
    if (!be)
        return dxs_fail(message, DXS_E_NOMEM, "lmdb: out of memory");
    be->sync_mode = mode;
    char lock_path[4200];
    snprintf(lock_path, sizeof(lock_path), "%s/lock", dir);
    be->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (be->lock_fd < 0) {
        rc = dxs_fail(message, DXS_E_IO, "lmdb: open %s: %s", lock_path, strerror(errno));
        free(be);
        return rc;
    }
    if (flock(be->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? dxs_fail(message, DXS_E_BUSY, "lmdb: %s is in use by another daemon (lock held)", dir)
                 : dxs_fail(message, DXS_E_IO, "lmdb: flock %s: %s", lock_path, strerror(errno));
        close(be->lock_fd);
        free(be);
        return rc;
    }
    MDB_txn *txn = NULL;
    unsigned env_flags = MDB_NOLOCK | (mode == DXS_SYNC_NONE ? MDB_NOSYNC : 0);
    if ((rc = mdb_env_create(&be->env)) != 0) {
        rc = lmdb_fail(be, message, rc, "mdb_env_create");
        goto fail;
    }
    if ((rc = mdb_env_set_maxdbs(be->env, 2)) != 0 ||
        (rc = mdb_env_set_mapsize(be->env, (size_t)map_mib << 20)) != 0 ||
        (rc = mdb_env_open(be->env, dir, env_flags, 0600)) != 0) {
        rc = lmdb_fail(be, message, rc, dir);
        goto fail;
    }
    if ((rc = mdb_txn_begin(be->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "keys", MDB_CREATE, &be->keys)) != 0 ||
        (rc = mdb_dbi_open(txn, "long_keys", MDB_CREATE, &be->long_keys)) != 0) {
        if (txn)
            mdb_txn_abort(txn);
        rc = lmdb_fail(be, message, rc, "opening the databases");
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        rc = lmdb_fail(be, message, rc, "opening the databases");
        goto fail;
    }
    /* LMDB reads the file through mmap: pages past a truncated file's end would be a SIGBUS in the
     * daemon, not an error. Refuse a file shorter than its last page instead. */
    MDB_envinfo info;
    MDB_stat st;
    struct stat fst;
    mdb_filehandle_t fd;
    if (mdb_env_info(be->env, &info) == 0 && mdb_env_stat(be->env, &st) == 0 && mdb_env_get_fd(be->env, &fd) == 0 &&
        fstat(fd, &fst) == 0 && (uint64_t)fst.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize) {
        rc = dxs_fail(message, DXS_E_CORRUPT, "lmdb: %s/data.mdb is %lld bytes, but its last page ends at %llu: truncated",
                      dir, (long long)fst.st_size, ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize);
        goto fail;
    }
    be->max_key = (size_t)mdb_env_get_maxkeysize(be->env);
    *out = be;
    return DXS_OK;
fail:
    if (be->env)
        mdb_env_close(be->env);
    close(be->lock_fd);
    free(be);
    return rc == DXS_OK ? DXS_E_IO : rc;
}

static void end_load(dxs_backend *be)
{
    if (be->load_txn)
        mdb_txn_abort(be->load_txn); /* also closes the cursor */
    be->load_txn = NULL;
    be->load_cur = NULL;
    be->load_stage = 2;
}

int dxs_backend_load_next(dxs_backend *be, uint8_t *buf, size_t cap, size_t *used, char *message)
{
    int rc;
    *used = 0;
    if (be->load_stage == 2)
        return DXS_OK;
    if (!be->load_txn && (rc = mdb_txn_begin(be->env, NULL, MDB_RDONLY, &be->load_txn)) != 0) {
        be->load_txn = NULL;
        return lmdb_fail(be, message, rc, "mdb_txn_begin (load)");
    }
    while (be->load_stage < 2) {
        MDB_dbi dbi = be->load_stage == 0 ? be->keys : be->long_keys;
        if (!be->load_cur && (rc = mdb_cursor_open(be->load_txn, dbi, &be->load_cur)) != 0) {
            be->load_cur = NULL;
            return lmdb_fail(be, message, rc, "mdb_cursor_open");
        }
        MDB_val k, v;
        MDB_cursor_op op = be->load_holding ? MDB_GET_CURRENT : be->load_started ? MDB_NEXT : MDB_FIRST;
        rc = mdb_cursor_get(be->load_cur, &k, &v, op);
        be->load_started = 1;
        be->load_holding = 0;
        if (rc == MDB_NOTFOUND) {
            mdb_cursor_close(be->load_cur);
            be->load_cur = NULL;
            be->load_started = 0;
            if (++be->load_stage == 2)
                end_load(be);
            continue;
        }
        if (rc != 0)
            return lmdb_fail(be, message, rc, "mdb_cursor_get");
        const uint8_t *key = k.mv_data, *value = v.mv_data;
        size_t key_len = k.mv_size, value_len = v.mv_size;
        if (be->load_stage == 1) { /* long_keys: u32 key length, key, value */
            if (v.mv_size < 4 || v.mv_size - 4 < get_u32le(v.mv_data))
                return dxs_fail(message, DXS_E_CORRUPT, "lmdb: a long_keys record is shorter than its key");
            key = (const uint8_t *)v.mv_data + 4;
            key_len = get_u32le(v.mv_data);
            value = key + key_len;
            value_len = v.mv_size - 4 - key_len;
        }
        if (!dxs_pack_record(buf, cap, used, key, (uint32_t)key_len, value, (uint32_t)value_len)) {
            be->load_holding = 1; /* return it next time */
            if (*used > 0)
                return DXS_OK;
            *used = dxs_record_size(key_len, value_len);
            return DXS_E_RANGE;
        }
    }
    return DXS_OK;
}

/* Put or delete one key inside `txn`. */
static int apply_op(dxs_backend *be, MDB_txn *txn, const struct dxs_op *op, char *message)
{
    int rc;
    if (op->key_len == 0 || op->key_len > DXS_KEY_MAX || (op->kind != DXS_OP_PUT && op->kind != DXS_OP_DELETE))
        return dxs_fail(message, DXS_E_IO, "lmdb: bad operation (kind %u, key of %u bytes)", op->kind,
                        op->key_len);
    if (op->key_len <= be->max_key) {
        MDB_val k = {op->key_len, (void *)op->key}, v = {op->value_len, (void *)op->value};
        rc = op->kind == DXS_OP_PUT ? mdb_put(txn, be->keys, &k, &v, 0) : mdb_del(txn, be->keys, &k, NULL);
        if (rc != 0 && !(rc == MDB_NOTFOUND && op->kind == DXS_OP_DELETE))
            return lmdb_fail(be, message, rc, op->kind == DXS_OP_PUT ? "mdb_put" : "mdb_del");
        return DXS_OK;
    }
    uint8_t d[DIGEST_LEN];
    digest(op->key, op->key_len, d);
    MDB_val k = {DIGEST_LEN, d}, old;
    rc = mdb_get(txn, be->long_keys, &k, &old);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return lmdb_fail(be, message, rc, "mdb_get");
    int same = rc == 0 && old.mv_size >= 4 + (size_t)op->key_len && get_u32le(old.mv_data) == op->key_len &&
               memcmp((uint8_t *)old.mv_data + 4, op->key, op->key_len) == 0;
    if (rc == 0 && !same)
        return dxs_fail(message, DXS_E_IO, "lmdb: two keys of %u bytes share a digest; refusing to store",
                        op->key_len);
    if (op->kind == DXS_OP_DELETE) {
        if (rc == MDB_NOTFOUND)
            return DXS_OK;
        rc = mdb_del(txn, be->long_keys, &k, NULL);
        return rc == 0 ? DXS_OK : lmdb_fail(be, message, rc, "mdb_del");
    }
    MDB_val v = {4 + (size_t)op->key_len + op->value_len, NULL};
    if ((rc = mdb_put(txn, be->long_keys, &k, &v, MDB_RESERVE)) != 0)
        return lmdb_fail(be, message, rc, "mdb_put");
    uint8_t *p = v.mv_data;
    dxs_put_u32le(p, op->key_len);
    memcpy(p + 4, op->key, op->key_len);
    if (op->value_len)
        memcpy(p + 4 + op->key_len, op->value, op->value_len);
    return DXS_OK;
}

int dxs_backend_apply(dxs_backend *be, const struct dxs_op *ops, uint32_t count, char *message)
{
    int rc;
    if (be->broken)
        return dxs_fail(message, DXS_E_BROKEN, "lmdb: the store failed earlier; restart the daemon");
    end_load(be); /* with MDB_NOLOCK no reader may outlive the load */
    MDB_txn *parent = NULL;
    if (be->sync_mode == DXS_SYNC_GROUP) {
        if (!be->group && (rc = mdb_txn_begin(be->env, NULL, 0, &be->group)) != 0) {
            be->group = NULL;
            return lmdb_fail(be, message, rc, "mdb_txn_begin (group)");
        }
        parent = be->group;
    }
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(be->env, parent, 0, &txn)) != 0)
        return lmdb_fail(be, message, rc, "mdb_txn_begin");
    for (uint32_t i = 0; i < count; i++) {
        if ((rc = apply_op(be, txn, &ops[i], message)) != DXS_OK) {
            mdb_txn_abort(txn); /* a child's abort leaves its parent (the group) as it was */
            return rc;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        rc = lmdb_fail(be, message, rc, "mdb_txn_commit");
        if (parent) /* merging a child failed: the group's state is not known */
            rc = DXS_E_BROKEN;
        if (rc == DXS_E_BROKEN)
            be->broken = 1;
        return rc;
    }
    return DXS_OK;
}

int dxs_backend_sync(dxs_backend *be, char *message)
{
    int rc;
    if (be->broken)
        return dxs_fail(message, DXS_E_BROKEN, "lmdb: the store failed earlier; restart the daemon");
    if (be->group) {
        rc = mdb_txn_commit(be->group); /* durable: the environment is not MDB_NOSYNC in group mode */
        be->group = NULL;
        if (rc != 0) {
            be->broken = 1;
            return lmdb_fail(be, message, rc, "committing the group");
        }
    } else if (be->sync_mode == DXS_SYNC_NONE && (rc = mdb_env_sync(be->env, 1)) != 0) {
        return lmdb_fail(be, message, rc, "mdb_env_sync");
    }
    return DXS_OK;
}

int dxs_backend_compact(dxs_backend *be, char *message)
{
    (void)be;
    (void)message;
    return DXS_OK; /* LMDB reuses freed pages: nothing to rewrite */
}

int dxs_backend_close(dxs_backend *be, char *message)
{
    int rc = DXS_OK;
    end_load(be);
    if (!be->broken)
        rc = dxs_backend_sync(be, message);
    else if (be->group)
        mdb_txn_abort(be->group);
    mdb_env_close(be->env);
    close(be->lock_fd); /* releases the flock */
    free(be);
    return rc;
}
