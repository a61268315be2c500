// The Extism host ABI ("extism:host/env"), implemented by us so that a plugin's exported function can be
// called synchronously on the request path (the Extism JS SDK only offers async calls; see
// docs/plugins.md). The memory functions — alloc, length, load/store, input_*, output_set, error_set —
// live in a small generated WebAssembly module (the "kernel"), one instance per plugin, so a plugin's
// calls into them are wasm-to-wasm calls with no JavaScript or BigInt in between. config_get, var_get,
// var_set and the log functions are JavaScript (they are rare, and need host data).
//
// Kernel memory layout (one memory, reset at the start of every call):
//   [0]  u32 output offset   [4] u32 output length   [8] u32 error offset   [12] unused
//   [16] u64 length of the input block, [24..] input bytes, then a bump-allocated heap of blocks,
//   each preceded by its u64 length. Offset 0 means "no block", as in Extism.
import { ByteWriter } from "./wasm_bytes.ts";

export const OUT_OFF_AT = 0;
export const OUT_LEN_AT = 4;
export const ERR_OFF_AT = 8;
export const INPUT_LEN_AT = 16;
export const INPUT_AT = 24;
/** Kernel memory cap: 2 MiB per plugin (inputs are < 16 KiB; the rest is what a plugin allocates). */
export const KERNEL_MAX_PAGES = 32;

const I32 = 0x7f;
const I64 = 0x7e;

interface KFunc {
  name: string;
  params: number[];
  results: number[];
  locals?: number[];
  code: (w: ByteWriter) => void;
}

// Opcodes used below.
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, GLOBAL_GET = 0x23, GLOBAL_SET = 0x24;
const I32_CONST = 0x41, I64_CONST = 0x42;
const I32_LOAD8_U = 0x2d, I64_LOAD = 0x29, I32_STORE = 0x36, I64_STORE = 0x37, I32_STORE8 = 0x3a;
const I64_STORE32 = 0x3e;
const I32_WRAP = 0xa7, I64_EXTEND_U = 0xad;
const IF = 0x04, END = 0x0b, RETURN = 0x0f;

const mem = (w: ByteWriter, op: number, offset = 0) => w.byte(op).u32(0).u32(offset);
const wrap0 = (w: ByteWriter) => w.byte(LOCAL_GET).u32(0).byte(I32_WRAP);

const FUNCS: KFunc[] = [
  {
    // p = align8(heap) + 8; grow memory if needed; store the length header; heap = p + n.
    name: "alloc",
    params: [I64],
    results: [I64],
    locals: [I64, I64],
    code: (w) => {
      w.byte(LOCAL_GET).u32(0).byte(I64_CONST).sleb(0x7fffffffn).byte(0x56); // n >u 2^31-1
      w.byte(IF).byte(0x40).byte(I64_CONST).sleb(0n).byte(RETURN).byte(END);
      w.byte(GLOBAL_GET).u32(0).byte(I64_CONST).sleb(15n).byte(0x7c); // heap + 15
      w.byte(I64_CONST).sleb(-8n).byte(0x83).byte(LOCAL_SET).u32(1); // p = (heap+15) & ~7
      w.byte(LOCAL_GET).u32(1).byte(LOCAL_GET).u32(0).byte(0x7c).byte(LOCAL_SET).u32(2); // end = p + n
      // if end > memory.size * 64 KiB: grow by the missing pages, or return 0
      w.byte(LOCAL_GET).u32(2).byte(0x3f).byte(0x00).byte(I64_EXTEND_U).byte(I64_CONST).sleb(16n).byte(0x86);
      w.byte(0x56).byte(IF).byte(0x40);
      w.byte(LOCAL_GET).u32(2).byte(I64_CONST).sleb(65535n).byte(0x7c).byte(I64_CONST).sleb(16n).byte(0x88);
      w.byte(I32_WRAP).byte(0x3f).byte(0x00).byte(0x6b).byte(0x40).byte(0x00); // grow(pages - size)
      w.byte(I32_CONST).sleb(-1n).byte(0x46).byte(IF).byte(0x40).byte(I64_CONST).sleb(0n).byte(RETURN).byte(
        END,
      );
      w.byte(END);
      // *(u64*)(p - 8) = n
      w.byte(LOCAL_GET).u32(1).byte(I64_CONST).sleb(8n).byte(0x7d).byte(I32_WRAP).byte(LOCAL_GET).u32(0);
      mem(w, I64_STORE);
      w.byte(LOCAL_GET).u32(2).byte(GLOBAL_SET).u32(0);
      w.byte(LOCAL_GET).u32(1);
    },
  },
  { name: "free", params: [I64], results: [], code: () => {} },
  {
    // Blocks live in [INPUT_AT, heap]; anything else has length 0.
    name: "length",
    params: [I64],
    results: [I64],
    code: (w) => lengthCode(w),
  },
  { name: "length_unsafe", params: [I64], results: [I64], code: (w) => lengthCode(w) },
  { name: "load_u8", params: [I64], results: [I32], code: (w) => mem(wrap0(w), I32_LOAD8_U) },
  { name: "load_u64", params: [I64], results: [I64], code: (w) => mem(wrap0(w), I64_LOAD) },
  {
    name: "store_u8",
    params: [I64, I32],
    results: [],
    code: (w) => mem(wrap0(w).byte(LOCAL_GET).u32(1), I32_STORE8),
  },
  {
    name: "store_u64",
    params: [I64, I64],
    results: [],
    code: (w) => mem(wrap0(w).byte(LOCAL_GET).u32(1), I64_STORE),
  },
  { name: "input_offset", params: [], results: [I64], code: (w) => w.byte(I64_CONST).sleb(BigInt(INPUT_AT)) },
  {
    name: "input_length",
    params: [],
    results: [I64],
    code: (w) => mem(w.byte(I32_CONST).sleb(BigInt(INPUT_LEN_AT)), I64_LOAD),
  },
  { name: "input_load_u8", params: [I64], results: [I32], code: (w) => mem(wrap0(w), I32_LOAD8_U, INPUT_AT) },
  { name: "input_load_u64", params: [I64], results: [I64], code: (w) => mem(wrap0(w), I64_LOAD, INPUT_AT) },
  {
    name: "output_set",
    params: [I64, I64],
    results: [],
    code: (w) => {
      mem(w.byte(I32_CONST).sleb(BigInt(OUT_OFF_AT)).byte(LOCAL_GET).u32(0), I64_STORE32);
      mem(w.byte(I32_CONST).sleb(BigInt(OUT_LEN_AT)).byte(LOCAL_GET).u32(1), I64_STORE32);
    },
  },
  {
    name: "error_set",
    params: [I64],
    results: [],
    code: (w) => mem(w.byte(I32_CONST).sleb(BigInt(ERR_OFF_AT)).byte(LOCAL_GET).u32(0), I64_STORE32),
  },
  {
    // Host only: start a call with `len` input bytes already written at INPUT_AT.
    name: "k_begin",
    params: [I32],
    results: [],
    code: (w) => {
      w.byte(I32_CONST).sleb(BigInt(INPUT_LEN_AT)).byte(LOCAL_GET).u32(0).byte(I64_EXTEND_U);
      mem(w, I64_STORE);
      w.byte(LOCAL_GET).u32(0).byte(I64_EXTEND_U).byte(I64_CONST).sleb(BigInt(INPUT_AT)).byte(0x7c);
      w.byte(GLOBAL_SET).u32(0);
      mem(w.byte(I32_CONST).sleb(0n).byte(I64_CONST).sleb(0n), I64_STORE); // output offset and length
      mem(w.byte(I32_CONST).sleb(BigInt(ERR_OFF_AT)).byte(I32_CONST).sleb(0n), I32_STORE);
    },
  },
];

function lengthCode(w: ByteWriter): void {
  w.byte(LOCAL_GET).u32(0).byte(I64_CONST).sleb(BigInt(INPUT_AT)).byte(0x54); // a <u INPUT_AT
  w.byte(LOCAL_GET).u32(0).byte(GLOBAL_GET).u32(0).byte(0x56).byte(0x72); // | a >u heap
  w.byte(IF).byte(0x40).byte(I64_CONST).sleb(0n).byte(RETURN).byte(END);
  w.byte(LOCAL_GET).u32(0).byte(I64_CONST).sleb(8n).byte(0x7d).byte(I32_WRAP);
  mem(w, I64_LOAD);
}

/** The kernel module's bytes (built once). */
export function kernelModuleBytes(): Uint8Array {
  const types = new ByteWriter().u32(FUNCS.length);
  for (const f of FUNCS) {
    types.byte(0x60).u32(f.params.length).bytes(f.params).u32(f.results.length).bytes(f.results);
  }
  const funcs = new ByteWriter().u32(FUNCS.length);
  FUNCS.forEach((_, i) => funcs.u32(i));
  const memory = new ByteWriter().u32(1).byte(0x01).u32(1).u32(KERNEL_MAX_PAGES);
  const globals = new ByteWriter().u32(1).byte(I64).byte(0x01).byte(I64_CONST).sleb(BigInt(INPUT_AT)).byte(
    END,
  );
  const exports = new ByteWriter().u32(FUNCS.length + 1);
  FUNCS.forEach((f, i) => exports.name(f.name).byte(0x00).u32(i));
  exports.name("memory").byte(0x02).u32(0);
  const code = new ByteWriter().u32(FUNCS.length);
  for (const f of FUNCS) {
    const body = new ByteWriter();
    const locals = f.locals ?? [];
    body.u32(locals.length);
    for (const t of locals) body.u32(1).byte(t);
    f.code(body);
    body.byte(END);
    code.u32(body.length).bytes(body.finish());
  }
  return new ByteWriter()
    .bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])
    .section(1, types)
    .section(3, funcs)
    .section(5, memory)
    .section(6, globals)
    .section(7, exports)
    .section(10, code)
    .finish();
}

let kernelModule: WebAssembly.Module | undefined;

/** The compiled kernel, shared by every plugin instance. */
export function kernelWasmModule(): WebAssembly.Module {
  kernelModule ??= new WebAssembly.Module(kernelModuleBytes() as BufferSource);
  return kernelModule;
}

/** The kernel functions a plugin may import, by name (the rest of "extism:host/env" is JavaScript). */
export const KERNEL_FUNCTIONS: ReadonlySet<string> = new Set(
  FUNCS.filter((f) => f.name !== "k_begin").map((f) => f.name),
);
