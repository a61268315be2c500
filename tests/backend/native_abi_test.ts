// The storage module ABI has one source, ffi/dxenstored_backend.h; src/backend/native_ffi.ts mirrors
// its numbers. A C program compiled against the header prints every code, flag, limit and the layout
// of struct dxs_op; they must equal the TypeScript constants. And the header's pack helper writes the
// record format the daemon reads.
import * as abi from "../../src/backend/native_ffi.ts";
import assert from "../helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const TS: Record<string, number> = {
  DXS_BACKEND_ABI_VERSION: abi.DXS_BACKEND_ABI_VERSION,
  DXS_OK: abi.DXS_OK,
  DXS_E_IO: abi.DXS_E_IO,
  DXS_E_NOSPC: abi.DXS_E_NOSPC,
  DXS_E_CORRUPT: abi.DXS_E_CORRUPT,
  DXS_E_BUSY: abi.DXS_E_BUSY,
  DXS_E_INVAL: abi.DXS_E_INVAL,
  DXS_E_RANGE: abi.DXS_E_RANGE,
  DXS_E_NOMEM: abi.DXS_E_NOMEM,
  DXS_E_BROKEN: abi.DXS_E_BROKEN,
  DXS_MESSAGE_MAX: abi.DXS_MESSAGE_MAX,
  DXS_KEY_MAX: abi.DXS_KEY_MAX,
  DXS_COMPACT_BYTES: abi.DXS_COMPACT_BYTES,
  DXS_SYNC_ALWAYS: abi.DXS_SYNC_ALWAYS,
  DXS_SYNC_GROUP: abi.DXS_SYNC_GROUP,
  DXS_SYNC_NONE: abi.DXS_SYNC_NONE,
  DXS_OPEN_RECOVER: abi.DXS_OPEN_RECOVER,
  DXS_OP_PUT: abi.DXS_OP_PUT,
  DXS_OP_DELETE: abi.DXS_OP_DELETE,
  "sizeof(struct dxs_op)": abi.DXS_OP_SIZE,
  "offsetof(key)": abi.DXS_OP_OFFSETS.key,
  "offsetof(value)": abi.DXS_OP_OFFSETS.value,
  "offsetof(key_len)": abi.DXS_OP_OFFSETS.keyLen,
  "offsetof(value_len)": abi.DXS_OP_OFFSETS.valueLen,
  "offsetof(kind)": abi.DXS_OP_OFFSETS.kind,
  "offsetof(reserved)": abi.DXS_OP_OFFSETS.reserved,
  "dxs_record_size(0,0)": abi.DXS_RECORD_HEADER,
};

const PROGRAM = `#include "dxenstored_backend.h"
#include <stddef.h>
#define P(name) printf("%s %lld\\n", #name, (long long)(name));
#define O(field) printf("offsetof(%s) %zu\\n", #field, offsetof(struct dxs_op, field));
int main(void) {
  P(DXS_BACKEND_ABI_VERSION) P(DXS_OK) P(DXS_E_IO) P(DXS_E_NOSPC) P(DXS_E_CORRUPT) P(DXS_E_BUSY)
  P(DXS_E_INVAL) P(DXS_E_RANGE) P(DXS_E_NOMEM) P(DXS_E_BROKEN) P(DXS_MESSAGE_MAX) P(DXS_KEY_MAX)
  P(DXS_COMPACT_BYTES) P(DXS_SYNC_ALWAYS) P(DXS_SYNC_GROUP) P(DXS_SYNC_NONE) P(DXS_OPEN_RECOVER)
  P(DXS_OP_PUT) P(DXS_OP_DELETE)
  printf("sizeof(struct dxs_op) %zu\\n", sizeof(struct dxs_op));
  O(key) O(value) O(key_len) O(value_len) O(kind) O(reserved)
  printf("dxs_record_size(0,0) %zu\\n", dxs_record_size(0, 0));
  /* the pack helper: two records, then one that does not fit */
  uint8_t buf[24]; size_t used = 0;
  int a = dxs_pack_record(buf, sizeof buf, &used, "/a", 2, "xyz", 3);
  int b = dxs_pack_record(buf, sizeof buf, &used, "k", 1, "", 0);
  int c = dxs_pack_record(buf, sizeof buf, &used, "k", 1, "", 0);
  printf("packed %d%d%d", a, b, c);
  for (size_t i = 0; i < used; i++) printf(" %u", buf[i]);
  printf("\\n");
  return 0;
}
`;

Deno.test("storage module ABI: the header's numbers and struct dxs_op match src/backend/native_ffi.ts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-native-abi-" });
  try {
    Deno.writeTextFileSync(`${dir}/abi.c`, PROGRAM);
    const cc = await new Deno.Command("gcc", {
      args: ["-Wall", "-Wextra", "-Werror", "-I", `${ROOT}ffi`, "-o", `${dir}/abi`, `${dir}/abi.c`],
      stderr: "piped",
    }).output();
    assert.ok(cc.success, `gcc: ${new TextDecoder().decode(cc.stderr)}`);
    const out = new TextDecoder().decode((await new Deno.Command(`${dir}/abi`).output()).stdout).trim().split(
      "\n",
    );
    const packed = out.pop()!;
    const c = new Map(
      out.map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]),
    );
    const mismatches: string[] = [];
    for (const [name, v] of Object.entries(TS)) {
      if (c.get(name) !== v) mismatches.push(`${name}: header ${c.get(name)}, TypeScript ${v}`);
    }
    assert.deepEqual(mismatches, []);
    assert.equal(c.size, Object.keys(TS).length);
    // u32 LE key_len, u32 LE value_len, key, value; the third record does not fit (24 - 13 - 9 = 2 left).
    assert.equal(packed, "packed 110 2 0 0 0 3 0 0 0 47 97 120 121 122 1 0 0 0 0 0 0 0 107");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
