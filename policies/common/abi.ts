// AssemblyScript side of the policy plugin ABI v1 (docs/plugins.md): constants and helpers shared by
// the built-in plugins. Only raw Extism host functions are used on the hot path (no allocation in the
// plugin's own heap), so a plugin built with the stub runtime never grows its memory per call.
import {
  alloc,
  input_length,
  input_load_u64,
  input_load_u8,
  output_set,
  store_u64,
} from "@extism/as-pdk/lib/env";

export const ABI_VERSION: u64 = 1;

export const KIND_NODE: u32 = 1;
export const KIND_CREATE: u32 = 2;
export const KIND_SETPERMS: u32 = 3;
export const KIND_CAPABILITY: u32 = 4;
export const KIND_MESSAGE: u32 = 5;

export const FLAG_PRIVILEGED: u32 = 1;
export const FLAG_HAS_TARGET: u32 = 2;
export const FLAG_WATCH_EVENT: u32 = 4;
export const FLAG_TRANSACTION: u32 = 8;
export const FLAG_SPECIAL: u32 = 16;

export const ACCESS_READ: u32 = 0;
export const ACCESS_WRITE: u32 = 1;
export const ACCESS_SETPERMS: u32 = 2;

export const CAP_RELEASE: u32 = 2;
export const CAP_RESUME: u32 = 3;

export const ALLOW: u32 = 0;
export const DENY: u32 = 1;
export const REWRITE: u32 = 2;
export const CACHEABLE: u32 = 1;

export const EPERM: u32 = 1;
export const EACCES: u32 = 13;
export const EINVAL: u32 = 22;
export const EROFS: u32 = 30;
export const ENOSYS: u32 = 38;

/** policy_info's answer: ABI version and the kinds this plugin answers (bit k = kind k). */
export function info(kinds: u32): i32 {
  const off = alloc(8);
  store_u64(off, ABI_VERSION | ((<u64> kinds) << 16));
  output_set(off, 4);
  return 0;
}

/** A decision: verdict, errno (for a deny) and output flags. */
export function answer(verdict: u32, errno: u32, flags: u32): i32 {
  const off = alloc(8);
  store_u64(off, <u64> (verdict | (errno << 8) | (flags << 16)));
  output_set(off, 4);
  return 0;
}

/** The question header, decoded. */
export class Header {
  kind: u32 = 0;
  sub: u32 = 0;
  flags: u32 = 0;
  domid: u32 = 0;
  target: u32 = 0;
}

export function readHeader(h: Header): void {
  const w = input_load_u64(0);
  h.kind = <u32> (w & 0xff);
  h.sub = <u32> ((w >> 8) & 0xff);
  h.flags = <u32> ((w >> 16) & 0xff);
  h.domid = <u32> ((w >> 32) & 0xffff);
  h.target = <u32> ((w >> 48) & 0xffff);
}

/** The permission block at input offset `at`: owner, other, entry count and the u16 extra field. */
export class PermsHeader {
  at: u64 = 0;
  owner: u32 = 0;
  other: u32 = 0;
  count: u32 = 0;
  extra: u32 = 0;
}

export function readPerms(p: PermsHeader, at: u64): void {
  const w = input_load_u64(at);
  p.at = at;
  p.owner = <u32> (w & 0xffff);
  p.other = <u32> ((w >> 16) & 0xff);
  p.count = <u32> ((w >> 32) & 0xffff);
  p.extra = <u32> ((w >> 48) & 0xffff);
}

/** Entry i of the block: domid in bits 0-15, access bits in 16-23. */
export function permEntry(p: PermsHeader, i: u32): u32 {
  const w = input_load_u64(p.at + 8 + (<u64> (i >> 1)) * 8);
  return <u32> (w >> ((<u64> (i & 1)) * 32));
}

/** Input offset just past the permission block (8-byte aligned). */
export function permsEnd(p: PermsHeader): u64 {
  return p.at + 8 + (<u64> ((p.count + 1) >> 1)) * 8;
}

export function inputByte(at: u64): u32 {
  return <u32> input_load_u8(at);
}

export function inputLength(): u64 {
  return input_length();
}

/** The AssemblyScript abort handler (--use abort=...): trap, which the host turns into a deny. */
export function abortPlugin(_message: usize, _file: usize, _line: u32, _column: u32): void {
  unreachable();
}
