// Load-time sandboxing of a plugin module, by rewriting its binary before it is compiled:
//
// - time: a fuel counter. A new exported mutable i32 global `__xs_fuel` is decremented at every function
//   entry and every loop iteration; below zero the code executes `unreachable` (a trap). The host sets
//   the budget before each call, so a plugin that loops or recurses forever traps after a bounded amount
//   of work instead of freezing the daemon (a synchronous wasm call cannot be interrupted otherwise).
// - memory: the module's own linear memory gets a maximum of `memoryPages` (64 KiB pages); a module
//   whose initial memory is larger is refused. memory.grow beyond the cap returns -1 as usual.
//
// The rewriter decodes every instruction to find loop headers, so it accepts exactly the instruction
// set it knows (MVP, sign extension, saturating truncation, bulk memory, reference types, multi-value)
// and refuses anything else (SIMD, threads, exceptions, tail calls, GC, memory64, multiple or imported
// or shared memories) with a clear error: fail closed at load rather than run unmetered code.
import { ByteReader, ByteWriter, WasmFormatError } from "./wasm_bytes.ts";

export const FUEL_EXPORT = "__xs_fuel";

export interface ModuleImport {
  readonly module: string;
  readonly name: string;
  /** 0 function, 1 table, 2 memory, 3 global, 4 tag. */
  readonly kind: number;
}

export interface MeteredModule {
  /** The rewritten module. */
  readonly bytes: Uint8Array;
  readonly imports: readonly ModuleImport[];
  /** The module's memory limits after capping (pages). */
  readonly memoryMin: number;
  readonly memoryMax: number;
}

const SECTION_RANK: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  6: 6,
  7: 7,
  8: 8,
  9: 9,
  12: 10,
  10: 11,
  11: 12,
};
const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x70, 0x6f]);

/**
 * Rewrite `input` with a fuel counter (initial value `initialFuel`, which pays for the start function)
 * and a memory cap of `memoryPages`. Throws WasmFormatError saying what is wrong or unsupported.
 */
export function meterModule(input: Uint8Array, memoryPages: number, initialFuel: number): MeteredModule {
  const r = new ByteReader(input);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const b of magic) {
    if (r.byte() !== b) throw new WasmFormatError("not a WebAssembly 1.0 module");
  }
  const sections: Array<{ id: number; start: number; end: number }> = [];
  let lastRank = 0;
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    if (id !== 0) {
      const rank = SECTION_RANK[id];
      if (rank === undefined) throw new WasmFormatError(`unsupported section id ${id}`);
      if (rank <= lastRank) throw new WasmFormatError(`section ${id} out of order`);
      lastRank = rank;
    }
    sections.push({ id, start, end: start + size });
  }

  const imports: ModuleImport[] = [];
  let importedGlobals = 0;
  let definedGlobals = 0;
  let memoryMin = -1;
  let memoryMax = -1;
  for (const s of sections) {
    const sr = new ByteReader(input, s.start, s.end);
    if (s.id === 2) {
      for (let n = sr.u32(); n > 0; n--) {
        const module = sr.name();
        const name = sr.name();
        const kind = sr.byte();
        imports.push({ module, name, kind });
        switch (kind) {
          case 0:
            sr.u32();
            break;
          case 1:
            sr.byte();
            readLimits(sr, "table");
            break;
          case 2:
            throw new WasmFormatError(
              `imports memory ${module}.${name}: a plugin must define its own memory`,
            );
          case 3:
            sr.byte();
            sr.byte();
            importedGlobals++;
            break;
          default:
            throw new WasmFormatError(`unsupported import kind ${kind} (${module}.${name})`);
        }
      }
    } else if (s.id === 5) {
      const n = sr.u32();
      if (n > 1) throw new WasmFormatError("more than one memory");
      if (n === 1) {
        const l = readLimits(sr, "memory");
        memoryMin = l.min;
        memoryMax = l.max ?? Infinity;
      }
    } else if (s.id === 6) {
      definedGlobals = sr.u32();
    } else if (s.id === 7) {
      for (let n = sr.u32(); n > 0; n--) {
        if (sr.name() === FUEL_EXPORT) throw new WasmFormatError(`module already exports ${FUEL_EXPORT}`);
        sr.byte();
        sr.u32();
      }
    }
  }
  if (memoryMin < 0) throw new WasmFormatError("module defines no memory");
  if (memoryMin > memoryPages) {
    throw new WasmFormatError(
      `module needs ${memoryMin} memory pages at start, more than the budget of ${memoryPages}`,
    );
  }
  const cappedMax = Math.min(memoryMax, memoryPages);
  const fuelGlobal = importedGlobals + definedGlobals;
  const check = fuelCheck(fuelGlobal);

  const out = new ByteWriter().bytes(magic);
  let globalsDone = false;
  let exportsDone = false;
  const newGlobal = (old?: { start: number; end: number }) => {
    const w = new ByteWriter();
    if (old) {
      const sr = new ByteReader(input, old.start, old.end);
      w.u32(sr.u32() + 1).bytes(input.subarray(sr.pos, old.end));
    } else {
      w.u32(1);
    }
    // i32, mutable, init i32.const initialFuel
    w.byte(0x7f).byte(0x01).byte(0x41).sleb(BigInt(initialFuel)).byte(0x0b);
    out.section(6, w);
    globalsDone = true;
  };
  const newExport = (old?: { start: number; end: number }) => {
    const w = new ByteWriter();
    if (old) {
      const sr = new ByteReader(input, old.start, old.end);
      w.u32(sr.u32() + 1).bytes(input.subarray(sr.pos, old.end));
    } else {
      w.u32(1);
    }
    w.name(FUEL_EXPORT).byte(0x03).u32(fuelGlobal);
    out.section(7, w);
    exportsDone = true;
  };
  for (const s of sections) {
    const rank = SECTION_RANK[s.id] ?? 0;
    if (s.id !== 0) {
      if (!globalsDone && rank > 6) newGlobal();
      if (!exportsDone && rank > 7) newExport();
    }
    switch (s.id) {
      case 5:
        out.section(5, new ByteWriter().u32(1).byte(0x01).u32(memoryMin).u32(cappedMax));
        break;
      case 6:
        newGlobal(s);
        break;
      case 7:
        newExport(s);
        break;
      case 10:
        out.section(10, meterCode(input, s.start, s.end, check));
        break;
      default:
        out.section(s.id, input.subarray(s.start, s.end));
    }
  }
  if (!globalsDone) newGlobal();
  if (!exportsDone) newExport();
  return { bytes: out.finish(), imports, memoryMin, memoryMax: cappedMax };
}

function readLimits(r: ByteReader, what: string): { min: number; max?: number } {
  const flag = r.byte();
  if (flag === 0x00) return { min: r.u32() };
  if (flag === 0x01) {
    const min = r.u32();
    return { min, max: r.u32() };
  }
  throw new WasmFormatError(`unsupported ${what} limits (shared or 64-bit)`);
}

/** fuel -= 1; if (fuel < 0) unreachable */
function fuelCheck(g: number): Uint8Array {
  const w = new ByteWriter();
  w.byte(0x23).u32(g).byte(0x41).byte(0x01).byte(0x6b).byte(0x24).u32(g);
  w.byte(0x23).u32(g).byte(0x41).byte(0x00).byte(0x48).byte(0x04).byte(0x40).byte(0x00).byte(0x0b);
  return w.finish();
}

function meterCode(input: Uint8Array, start: number, end: number, check: Uint8Array): ByteWriter {
  const r = new ByteReader(input, start, end);
  const w = new ByteWriter();
  const n = r.u32();
  w.u32(n);
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const bodyEnd = r.pos + size;
    if (bodyEnd > end) throw new WasmFormatError("function body exceeds the code section");
    const br = new ByteReader(input, r.pos, bodyEnd);
    for (let groups = br.u32(); groups > 0; groups--) {
      br.u32();
      br.byte();
    }
    const body = new ByteWriter();
    body.bytes(input.subarray(r.pos, br.pos)).bytes(check);
    copyInstructions(br, body, check);
    w.u32(body.length).bytes(body.finish());
    r.pos = bodyEnd;
  }
  return w;
}

function skipBlockType(r: ByteReader): void {
  const b = r.buf[r.pos];
  if (b === 0x40 || VALTYPES.has(b)) r.skip(1);
  else r.skipLeb(5);
}

function memarg(r: ByteReader): void {
  const align = r.u32();
  if (align & 0x40) throw new WasmFormatError("multiple memories are not supported");
  r.u32();
}

/** Copy the instruction stream, adding the fuel check after every loop header. */
function copyInstructions(r: ByteReader, w: ByteWriter, check: Uint8Array): void {
  let from = r.pos;
  while (!r.done) {
    const at = r.pos;
    const op = r.byte();
    if (op === 0x03) {
      skipBlockType(r);
      w.bytes(r.buf.subarray(from, r.pos)).bytes(check);
      from = r.pos;
      continue;
    }
    if (op >= 0x45 && op <= 0xc4) continue; // numeric, incl. sign extension
    if (op >= 0x28 && op <= 0x3e) {
      memarg(r);
      continue;
    }
    switch (op) {
      case 0x00:
      case 0x01:
      case 0x05:
      case 0x0b:
      case 0x0f:
      case 0x1a:
      case 0x1b:
      case 0xd1:
        break;
      case 0x02:
      case 0x04:
        skipBlockType(r);
        break;
      case 0x0c:
      case 0x0d:
      case 0x10:
      case 0x20:
      case 0x21:
      case 0x22:
      case 0x23:
      case 0x24:
      case 0x25:
      case 0x26:
      case 0xd2:
        r.u32();
        break;
      case 0x0e:
        for (let n = r.u32(); n >= 0; n--) r.u32(); // n labels + default
        break;
      case 0x11:
        r.u32();
        r.u32();
        break;
      case 0x1c:
        r.skip(r.u32());
        break;
      case 0x3f:
      case 0x40:
        if (r.u32() !== 0) throw new WasmFormatError("multiple memories are not supported");
        break;
      case 0x41:
        r.skipLeb(5);
        break;
      case 0x42:
        r.skipLeb(10);
        break;
      case 0x43:
        r.skip(4);
        break;
      case 0x44:
        r.skip(8);
        break;
      case 0xd0:
        r.byte();
        break;
      case 0xfc:
        prefixedFC(r);
        break;
      default:
        throw new WasmFormatError(
          `unsupported instruction 0x${op.toString(16).padStart(2, "0")} at byte ${at} ` +
            "(SIMD, threads, exceptions, tail calls and GC are not allowed in policy plugins)",
        );
    }
  }
  w.bytes(r.buf.subarray(from, r.end));
}

function prefixedFC(r: ByteReader): void {
  const sub = r.u32();
  if (sub <= 7) return; // saturating truncation
  switch (sub) {
    case 8: // memory.init data, mem
    case 10: // memory.copy mem, mem
    case 12: // table.init
    case 14: // table.copy
      r.u32();
      r.u32();
      return;
    case 9: // data.drop
    case 11: // memory.fill mem
    case 13: // elem.drop
    case 15: // table.grow
    case 16: // table.size
    case 17: // table.fill
      r.u32();
      return;
    default:
      throw new WasmFormatError(`unsupported instruction 0xfc ${sub}`);
  }
}
