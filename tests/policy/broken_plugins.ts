// Hand-built Extism plugins for the sandbox tests: valid policy plugins (policy_info answers, ABI v1)
// whose policy_decide misbehaves in a chosen way, and modules a plugin may not be. Built with the same
// binary writer the daemon uses for its kernel, so the tests need no toolchain.
import { ByteWriter } from "../../src/policy/wasm_bytes.ts";

const I32 = 0x7f, I64 = 0x7e;

export type Misbehaviour =
  | "allow" // answers allow (the control)
  | "trap" // unreachable
  | "spin" // loop forever
  | "grab" // grow memory by a page until refused, then trap (an allocator aborting on OOM)
  | "grow-once" // try to grow by 1000 pages, ignore the result, answer allow
  | "recurse" // unbounded recursion
  | "no-output" // return 0 without output_set
  | "rc"; // return 1

export interface BrokenOptions {
  /** Only misbehave on message questions for this wire type (so the load-time probes pass). */
  readonly onlyMessageType?: number;
  readonly memoryMin?: number;
  readonly memoryMax?: number;
  /** Extra imports (module, name), declared as () -> () functions. */
  readonly extraImports?: Array<[string, string]>;
  /** Raw bytes appended to policy_decide's body before its end (e.g. an unsupported opcode). */
  readonly rawDecide?: number[];
  /** Export a state_save (live update) that traps, or answers this many bytes (zeros). */
  readonly stateSave?: "trap" | number;
}

const KIND_NODE = 1, KIND_MESSAGE = 5;

/** A module with policy_info (kinds: node + message) and a misbehaving policy_decide. */
export function brokenPlugin(how: Misbehaviour, o: BrokenOptions = {}): Uint8Array {
  const extra = o.extraImports ?? [];
  // Types: 0 (i64)->i64, 1 (i64,i64)->(), 2 ()->i32, 3 ()->()
  const types = new ByteWriter().u32(4);
  types.byte(0x60).u32(1).byte(I64).u32(1).byte(I64);
  types.byte(0x60).u32(2).byte(I64).byte(I64).u32(0);
  types.byte(0x60).u32(0).u32(1).byte(I32);
  types.byte(0x60).u32(0).u32(0);
  const imports = new ByteWriter().u32(4 + extra.length);
  const imp = (m: string, n: string, t: number) => imports.name(m).name(n).byte(0x00).u32(t);
  imp("extism:host/env", "alloc", 0); // func 0
  imp("extism:host/env", "store_u64", 1); // func 1
  imp("extism:host/env", "output_set", 1); // func 2
  imp("extism:host/env", "input_load_u64", 0); // func 3
  for (const [m, n] of extra) imp(m, n, 3);
  const base = 4 + extra.length; // first defined function
  const INFO = base, DECIDE = base + 1, RECURSE = base + 2, SAVE = base + 3;
  const saves = o.stateSave !== undefined;
  const funcs = new ByteWriter().u32(saves ? 4 : 3).u32(2).u32(2).u32(2);
  if (saves) funcs.u32(2);
  const memory = new ByteWriter().u32(1);
  if (o.memoryMax === undefined) memory.byte(0x00).u32(o.memoryMin ?? 1);
  else memory.byte(0x01).u32(o.memoryMin ?? 1).u32(o.memoryMax);
  const exports = new ByteWriter().u32(saves ? 4 : 3);
  if (saves) exports.name("state_save").byte(0x00).u32(SAVE);
  exports.name("policy_info").byte(0x00).u32(INFO);
  exports.name("policy_decide").byte(0x00).u32(DECIDE);
  exports.name("memory").byte(0x02).u32(0);

  /** alloc 8, store `value`, output_set 4 bytes, return 0 (one i64 local). */
  const answer = (w: ByteWriter, value: bigint) => {
    w.byte(0x42).sleb(8n).byte(0x10).u32(0).byte(0x22).u32(0); // local.tee 0
    w.byte(0x42).sleb(value).byte(0x10).u32(1);
    w.byte(0x20).u32(0).byte(0x42).sleb(4n).byte(0x10).u32(2);
    w.byte(0x41).sleb(0n);
  };
  const body = (fill: (w: ByteWriter) => void) => {
    const w = new ByteWriter().u32(1).u32(1).byte(I64);
    fill(w);
    w.byte(0x0b);
    return w;
  };
  const info = body((w) => answer(w, 1n | (BigInt((1 << KIND_NODE) | (1 << KIND_MESSAGE)) << 16n)));
  const decide = body((w) => {
    if (o.onlyMessageType !== undefined) {
      // if (kind != MESSAGE || type != T) answer allow
      w.byte(0x42).sleb(0n).byte(0x10).u32(3).byte(0x42).sleb(0xffffn).byte(0x83); // header & 0xffff
      w.byte(0x42).sleb(BigInt(KIND_MESSAGE | (o.onlyMessageType << 8))).byte(0x52); // i64.ne
      w.byte(0x04).byte(0x40);
      answer(w, 0n);
      w.byte(0x0f).byte(0x0b); // return, end
    }
    switch (how) {
      case "allow":
        answer(w, 0n);
        break;
      case "trap":
        w.byte(0x00);
        break;
      case "spin":
        w.byte(0x03).byte(0x40).byte(0x0c).u32(0).byte(0x0b).byte(0x00);
        break;
      case "grab":
        // loop: if (memory.grow(1) == -1) unreachable; br 0
        w.byte(0x03).byte(0x40);
        w.byte(0x41).sleb(1n).byte(0x40).byte(0x00).byte(0x41).sleb(-1n).byte(0x46);
        w.byte(0x04).byte(0x40).byte(0x00).byte(0x0b).byte(0x0c).u32(0).byte(0x0b).byte(0x00);
        break;
      case "grow-once":
        w.byte(0x41).sleb(1000n).byte(0x40).byte(0x00).byte(0x1a);
        answer(w, 0n);
        break;
      case "recurse":
        w.byte(0x10).u32(RECURSE).byte(0x00);
        break;
      case "no-output":
        w.byte(0x41).sleb(0n);
        break;
      case "rc":
        w.byte(0x41).sleb(1n);
        break;
    }
    if (o.rawDecide) w.bytes(o.rawDecide);
  });
  const recurse = new ByteWriter().u32(0).byte(0x10).u32(RECURSE).byte(0x0b);
  // state_save: unreachable, or output_set(alloc(n), n) and return 0.
  const save = body((w) => {
    if (o.stateSave === "trap") {
      w.byte(0x00);
      return;
    }
    const n = BigInt(o.stateSave ?? 0);
    w.byte(0x42).sleb(n).byte(0x10).u32(0).byte(0x42).sleb(n).byte(0x10).u32(2).byte(0x41).sleb(0n);
  });
  const code = new ByteWriter().u32(saves ? 4 : 3);
  for (const b of saves ? [info, decide, recurse, save] : [info, decide, recurse]) {
    code.u32(b.length).bytes(b.finish());
  }
  return new ByteWriter()
    .bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])
    .section(1, types)
    .section(2, imports)
    .section(3, funcs)
    .section(5, memory)
    .section(7, exports)
    .section(10, code)
    .finish();
}
