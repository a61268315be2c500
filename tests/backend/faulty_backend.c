/*
 * A deliberately faulty storage module for tests/backend/native_test.ts: it forwards every call to
 * a real module (the LMDB one) and injects one fault, so that the tests can check what the daemon
 * does with it and that the real store behind it is never damaged.
 *
 *     --backend so:libfaulty.so:<fault>:<inner.so>:<inner args>
 *
 * <fault> is one of
 *   none                 forward everything
 *   open                 dxs_backend_open fails (DXS_E_IO)
 *   load                 dxs_backend_load_next fails (DXS_E_CORRUPT)
 *   load-used            load_next claims more bytes than the buffer holds
 *   load-range           load_next asks (DXS_E_RANGE) for a buffer no larger than the one it has
 *   load-keylen          load_next returns a record whose key length is 0x7fffffff
 *   load-overrun         load_next returns a record whose value runs past the batch
 *   apply@N              the N-th dxs_backend_apply fails with DXS_E_IO (not forwarded)
 *   nospc@N              the N-th apply fails with DXS_E_NOSPC
 *   broken@N             the N-th apply fails with DXS_E_BROKEN
 *   code@N               the N-th apply returns 77, a code the ABI does not have
 *   garbage@N            the N-th apply fails with a message of 512 bytes, no NUL, control characters
 *   sync@N               the N-th dxs_backend_sync fails (DXS_E_IO, not forwarded)
 *   compact              every dxs_backend_compact fails (DXS_E_IO)
 * Applies are counted from the open; the initial tree of a new store is apply 1.
 *
 * Built with -DFAULTY_ABI_VERSION=<n> it reports that ABI version; with -DFAULTY_NO_SYNC it does not
 * export dxs_backend_sync.
 */
#include "dxenstored_backend.h"

#include <dlfcn.h>
#include <stdlib.h>

#ifndef FAULTY_ABI_VERSION
#define FAULTY_ABI_VERSION DXS_BACKEND_ABI_VERSION
#endif

struct inner {
    int (*open)(const char *, uint32_t, dxs_backend **, char *);
    int (*load_next)(dxs_backend *, uint8_t *, size_t, size_t *, char *);
    int (*apply)(dxs_backend *, const struct dxs_op *, uint32_t, char *);
    int (*sync)(dxs_backend *, char *);
    int (*compact)(dxs_backend *, char *);
    int (*close)(dxs_backend *, char *);
};

struct dxs_backend {
    struct inner fn;
    dxs_backend *inner;
    char fault[32];
    unsigned at, applies, syncs;
};

uint32_t dxs_backend_abi_version(void)
{
    return FAULTY_ABI_VERSION;
}

static int is(dxs_backend *be, const char *fault)
{
    return strcmp(be->fault, fault) == 0;
}

int dxs_backend_open(const char *args, uint32_t flags, dxs_backend **out, char *message)
{
    const char *c1 = strchr(args, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c1 - args >= 32 || c2 - c1 - 1 >= 1024)
        return dxs_fail(message, DXS_E_INVAL, "faulty: usage <fault>:<inner.so>:<inner args>");
    char lib[1024];
    memcpy(lib, c1 + 1, c2 - c1 - 1);
    lib[c2 - c1 - 1] = '\0';
    dxs_backend *be = calloc(1, sizeof(*be));
    memcpy(be->fault, args, c1 - args);
    char *at = strchr(be->fault, '@');
    if (at) {
        *at = '\0';
        be->at = (unsigned)atoi(at + 1);
    }
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        free(be);
        return dxs_fail(message, DXS_E_INVAL, "faulty: %s", dlerror());
    }
    be->fn.open = (int (*)(const char *, uint32_t, dxs_backend **, char *))dlsym(h, "dxs_backend_open");
    be->fn.load_next = (int (*)(dxs_backend *, uint8_t *, size_t, size_t *, char *))dlsym(h, "dxs_backend_load_next");
    be->fn.apply = (int (*)(dxs_backend *, const struct dxs_op *, uint32_t, char *))dlsym(h, "dxs_backend_apply");
    be->fn.sync = (int (*)(dxs_backend *, char *))dlsym(h, "dxs_backend_sync");
    be->fn.compact = (int (*)(dxs_backend *, char *))dlsym(h, "dxs_backend_compact");
    be->fn.close = (int (*)(dxs_backend *, char *))dlsym(h, "dxs_backend_close");
    if (is(be, "open")) {
        free(be);
        return dxs_fail(message, DXS_E_IO, "faulty: simulated open failure");
    }
    int rc = be->fn.open(c2 + 1, flags, &be->inner, message);
    if (rc != DXS_OK) {
        free(be);
        return rc;
    }
    *out = be;
    return DXS_OK;
}

int dxs_backend_load_next(dxs_backend *be, uint8_t *buf, size_t cap, size_t *used, char *message)
{
    if (is(be, "load"))
        return dxs_fail(message, DXS_E_CORRUPT, "faulty: simulated damage at record 3");
    if (is(be, "load-range")) {
        *used = cap;
        return DXS_E_RANGE;
    }
    int rc = be->fn.load_next(be->inner, buf, cap, used, message);
    if (rc != DXS_OK || *used < 8)
        return rc;
    if (is(be, "load-used"))
        *used = cap + 1;
    else if (is(be, "load-keylen"))
        dxs_put_u32le(buf, 0x7fffffff);
    else if (is(be, "load-overrun"))
        dxs_put_u32le(buf + 4, (uint32_t)*used);
    return DXS_OK;
}

int dxs_backend_apply(dxs_backend *be, const struct dxs_op *ops, uint32_t count, char *message)
{
    if (++be->applies == be->at) {
        if (is(be, "apply"))
            return dxs_fail(message, DXS_E_IO, "faulty: simulated write error");
        if (is(be, "nospc"))
            return dxs_fail(message, DXS_E_NOSPC, "faulty: simulated full disk");
        if (is(be, "broken"))
            return dxs_fail(message, DXS_E_BROKEN, "faulty: simulated failed rollback");
        if (is(be, "code"))
            return dxs_fail(message, 77, "faulty: a status the ABI does not have");
        if (is(be, "garbage")) {
            for (int i = 0; i < DXS_MESSAGE_MAX; i++)
                message[i] = (char)(i % 3 == 0 ? '\n' : 'A' + i % 26);
            return DXS_E_IO;
        }
    }
    return be->fn.apply(be->inner, ops, count, message);
}

#ifndef FAULTY_NO_SYNC
int dxs_backend_sync(dxs_backend *be, char *message)
{
    if (++be->syncs == be->at && is(be, "sync"))
        return dxs_fail(message, DXS_E_IO, "faulty: simulated fsync failure");
    return be->fn.sync(be->inner, message);
}
#endif

int dxs_backend_compact(dxs_backend *be, char *message)
{
    if (is(be, "compact"))
        return dxs_fail(message, DXS_E_IO, "faulty: simulated compaction failure");
    return be->fn.compact(be->inner, message);
}

int dxs_backend_close(dxs_backend *be, char *message)
{
    int rc = be->fn.close(be->inner, message);
    free(be);
    return rc;
}
