/*
 * The smallest storage module for dxenstored (ffi/dxenstored_backend.h): records in a hash table in
 * the daemon's memory, so every start begins with an empty store (as --backend memory). A starting
 * point: keep the same seven functions and put the records somewhere that outlives the process.
 *
 * gcc -shared -fPIC -O2 -Wall -Wextra -Werror -I ffi -o build/backends/libmemory_example.so backends/example/memory_backend.c
 * bin/dxenstored --socket ./run/socket --backend so:build/backends/libmemory_example.so
 */
#include "dxenstored_backend.h"

#include <stdlib.h>

#define BUCKETS 4096

struct record {
    struct record *next;
    uint32_t key_len, value_len;
    uint8_t data[]; /* the key, then the value */
};

struct dxs_backend {
    struct record *table[BUCKETS];
};

uint32_t dxs_backend_abi_version(void) { return DXS_BACKEND_ABI_VERSION; }

static uint32_t bucket(const uint8_t *key, uint32_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (len--)
        h = (h ^ *key++) * 16777619u;
    return h % BUCKETS;
}

/* The link pointing at `key`'s record, or at the NULL that ends its bucket. */
static struct record **find(dxs_backend *be, const uint8_t *key, uint32_t len)
{
    struct record **r = &be->table[bucket(key, len)];
    while (*r && !((*r)->key_len == len && memcmp((*r)->data, key, len) == 0))
        r = &(*r)->next;
    return r;
}

int dxs_backend_open(const char *args, uint32_t flags, dxs_backend **out, char *message)
{
    (void)flags; /* nothing here outlives the process, whatever the sync mode */
    if (args[0] != '\0')
        return dxs_fail(message, DXS_E_INVAL, "memory_example takes no arguments (got \"%s\")", args);
    dxs_backend *be = calloc(1, sizeof(*be));
    if (!be)
        return dxs_fail(message, DXS_E_NOMEM, "out of memory");
    *out = be;
    return DXS_OK;
}

/* A store that was just opened holds nothing. A persistent module copies its records into buf here
 * with dxs_pack_record, as many as fit per call, and returns 0 bytes once all have been returned. */
int dxs_backend_load_next(dxs_backend *be, uint8_t *buf, size_t cap, size_t *used, char *message)
{
    (void)be, (void)buf, (void)cap, (void)message;
    *used = 0;
    return DXS_OK;
}

/* All or nothing: allocate every new record first (the only step that can fail), then change the
 * table, which cannot fail. */
int dxs_backend_apply(dxs_backend *be, const struct dxs_op *ops, uint32_t count, char *message)
{
    struct record **fresh = calloc(count ? count : 1, sizeof(*fresh));
    if (!fresh)
        return dxs_fail(message, DXS_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < count; i++) {
        if (ops[i].kind != DXS_OP_PUT)
            continue;
        fresh[i] = malloc(sizeof(struct record) + ops[i].key_len + ops[i].value_len);
        if (!fresh[i]) {
            while (i--)
                free(fresh[i]);
            free(fresh);
            return dxs_fail(message, DXS_E_NOMEM, "out of memory");
        }
        fresh[i]->key_len = ops[i].key_len;
        fresh[i]->value_len = ops[i].value_len;
        memcpy(fresh[i]->data, ops[i].key, ops[i].key_len);
        if (ops[i].value_len)
            memcpy(fresh[i]->data + ops[i].key_len, ops[i].value, ops[i].value_len);
    }
    for (uint32_t i = 0; i < count; i++) {
        struct record **at = find(be, ops[i].key, ops[i].key_len), *old = *at;
        if (old) { /* a put replaces it, a delete removes it */
            *at = old->next;
            free(old);
        }
        if (fresh[i]) {
            struct record **head = &be->table[bucket(ops[i].key, ops[i].key_len)];
            fresh[i]->next = *head;
            *head = fresh[i];
        }
    }
    free(fresh);
    return DXS_OK;
}

/* Nothing to make durable, nothing to rewrite. */
int dxs_backend_sync(dxs_backend *be, char *message) { return (void)be, (void)message, DXS_OK; }
int dxs_backend_compact(dxs_backend *be, char *message) { return (void)be, (void)message, DXS_OK; }

int dxs_backend_close(dxs_backend *be, char *message)
{
    (void)message;
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct record *r = be->table[b], *next; r; r = next) {
            next = r->next;
            free(r);
        }
    }
    free(be);
    return DXS_OK;
}
