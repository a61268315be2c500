/* The dxenstored policy plugin ABI v1 for freestanding C (docs/plugins.md): Extism host imports,
 * constants and small helpers. No libc, no WASI: build with
 *   clang-14 --target=wasm32-unknown-unknown -O2 -nostdlib -fuse-ld=lld -Wl,--no-entry
 *     -Wl,--allow-undefined -Wl,--export=policy_info -Wl,--export=policy_decide
 *     -Wl,--max-memory=1048576 -o plugin.wasm plugin.c
 * (policies/build.ts does exactly this.) */
#ifndef POLICY_ABI_H
#define POLICY_ABI_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define EXTISM_IMPORT(name) __attribute__((import_module("extism:host/env"), import_name(#name)))

EXTISM_IMPORT(input_load_u64) u64 input_load_u64(u64 offset);
EXTISM_IMPORT(input_length) u64 input_length(void);
EXTISM_IMPORT(alloc) u64 extism_alloc(u64 length);
EXTISM_IMPORT(length) u64 extism_length(u64 offset);
EXTISM_IMPORT(load_u8) u32 extism_load_u8(u64 offset);
EXTISM_IMPORT(store_u8) void extism_store_u8(u64 offset, u32 value);
EXTISM_IMPORT(store_u64) void extism_store_u64(u64 offset, u64 value);
EXTISM_IMPORT(output_set) void extism_output_set(u64 offset, u64 length);
EXTISM_IMPORT(error_set) void extism_error_set(u64 offset);
EXTISM_IMPORT(config_get) u64 extism_config_get(u64 key_offset);

#define EXPORT(name) __attribute__((export_name(#name)))

enum { KIND_NODE = 1, KIND_CREATE = 2, KIND_SETPERMS = 3, KIND_CAPABILITY = 4, KIND_MESSAGE = 5 };
enum { FLAG_PRIVILEGED = 1, FLAG_HAS_TARGET = 2, FLAG_WATCH_EVENT = 4, FLAG_TRANSACTION = 8, FLAG_SPECIAL = 16 };
enum { ACCESS_READ = 0, ACCESS_WRITE = 1, ACCESS_SETPERMS = 2 };
enum { ALLOW = 0, DENY = 1, REWRITE = 2 };
enum { CACHEABLE = 1 };
enum { E_PERM = 1, E_ACCES = 13, E_INVAL = 22, E_ROFS = 30, E_NOSYS = 38 };

struct header {
	u32 kind, sub, flags, domid, target;
};

static inline void read_header(struct header *h) {
	u64 w = input_load_u64(0);
	h->kind = (u32)(w & 0xff);
	h->sub = (u32)((w >> 8) & 0xff);
	h->flags = (u32)((w >> 16) & 0xff);
	h->domid = (u32)((w >> 32) & 0xffff);
	h->target = (u32)((w >> 48) & 0xffff);
}

/* policy_info's answer: ABI version 1 and the kinds this plugin answers (bit k = kind k). */
static inline int info(u32 kinds) {
	u64 off = extism_alloc(8);
	extism_store_u64(off, 1ULL | ((u64)kinds << 16));
	extism_output_set(off, 4);
	return 0;
}

/* A decision: verdict, errno (for a deny), output flags. */
static inline int answer(u32 verdict, u32 err, u32 flags) {
	u64 off = extism_alloc(8);
	extism_store_u64(off, (u64)(verdict | (err << 8) | (flags << 16)));
	extism_output_set(off, 4);
	return 0;
}

/* Fail the call with a message (the host logs it; policy_info failing refuses the plugin). */
static inline int fail(const char *msg) {
	u64 n = 0;
	while (msg[n]) n++;
	u64 off = extism_alloc(n);
	for (u64 i = 0; i < n; i++) extism_store_u8(off + i, (u8)msg[i]);
	extism_error_set(off);
	return 1;
}

/* Config value `key` (NUL-terminated) copied into buf (NUL-terminated); -1 if unset, -2 if too long. */
static inline int config_string(const char *key, char *buf, u32 size) {
	u64 n = 0;
	while (key[n]) n++;
	u64 k = extism_alloc(n);
	for (u64 i = 0; i < n; i++) extism_store_u8(k + i, (u8)key[i]);
	u64 v = extism_config_get(k);
	if (v == 0) return -1;
	u64 len = extism_length(v);
	if (len + 1 > size) return -2;
	for (u64 i = 0; i < len; i++) buf[i] = (char)extism_load_u8(v + i);
	buf[len] = 0;
	return (int)len;
}

#endif
