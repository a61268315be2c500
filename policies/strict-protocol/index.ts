// The `strict-protocol` policy plugin (opt-in): the XenStore specification's recommendations enforced
// as rules, on every request before it runs (message questions), for every caller:
// - RELEASE and RESUME are refused with ENOSYS (the seed mail proposes removing them);
// - a path argument uses only A-Z a-z 0-9 - / _ @, has no empty component or trailing slash, and '@'
//   appears only as the first character of a special path given to WATCH, UNWATCH, GET_PERMS or
//   SET_PERMS; relative paths are at most 2048 bytes, absolute ones 3072;
// - every argument is NUL-terminated and nothing follows the last one (READ "path\0" exactly...);
// - a WRITE value is 7-bit printable ASCII (0x20-0x7E) with no trailing NUL;
// - domain ids are plain decimal (no sign, no leading zero, at most 65535).
// Refusals are EINVAL unless said otherwise. Nothing here depends on permissions: never cacheable.
import { input_length, input_load_u64 } from "@extism/as-pdk/lib/env";
import { ALLOW, answer, DENY, EINVAL, ENOSYS, Header, info, KIND_MESSAGE, readHeader } from "../common/abi";

const DIRECTORY: u32 = 1;
const READ: u32 = 2;
const GET_PERMS: u32 = 3;
const WATCH: u32 = 4;
const UNWATCH: u32 = 5;
const INTRODUCE: u32 = 8;
const RELEASE: u32 = 9;
const GET_DOMAIN_PATH: u32 = 10;
const WRITE: u32 = 11;
const MKDIR: u32 = 12;
const RM: u32 = 13;
const SET_PERMS: u32 = 14;
const IS_DOMAIN_INTRODUCED: u32 = 17;
const RESUME: u32 = 18;
const SET_TARGET: u32 = 19;
const DIRECTORY_PART: u32 = 22;

const ABS_PATH_MAX: u32 = 3072;
const REL_PATH_MAX: u32 = 2048;

const h = new Header();
/** The payload, copied once per call (4096 bytes + room for 8-byte loads). */
const payload = new StaticArray<u8>(4112);
let len: u32 = 0;

export function policy_info(): i32 {
  return info(1 << KIND_MESSAGE);
}

function loadPayload(): void {
  len = <u32> (input_load_u64(8) & 0xffffffff);
  if (len > 4096) len = 4096;
  const total = <u32> input_length();
  const base = changetype<usize>(payload);
  for (let i: u32 = 0; i < len; i += 8) {
    if (<u32> 16 + i + 8 > total) break;
    store<u64>(base + i, input_load_u64(16 + <u64> i));
  }
}

function at(i: u32): u32 {
  return <u32> unchecked(payload[i]);
}

/** Index of the NUL ending the argument starting at `from`, or -1. */
function argEnd(from: u32): i32 {
  for (let i = from; i < len; i++) if (at(i) == 0) return <i32> i;
  return -1;
}

function isPathChar(c: u32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c == 0x2d || c == 0x2f || c == 0x5f;
}

/** The path [from, end) is valid for message type `op`. */
function pathOk(op: u32, from: u32, end: u32): bool {
  const n = end - from;
  if (n == 0) return false;
  const first = at(from);
  let start = from;
  if (first == 0x40) {
    // '@': only a special path, only where special paths mean something.
    if (op != WATCH && op != UNWATCH && op != GET_PERMS && op != SET_PERMS) return false;
    start = from + 1;
  }
  const absolute = first == 0x2f;
  if (n > (absolute || first == 0x40 ? ABS_PATH_MAX : REL_PATH_MAX)) return false;
  let prevSlash = false;
  for (let i = start; i < end; i++) {
    const c = at(i);
    if (!isPathChar(c)) return false;
    const slash = c == 0x2f;
    if (slash && prevSlash) return false;
    prevSlash = slash;
  }
  return !(prevSlash && n > 1); // a trailing slash only as the root itself
}

/** A plain decimal domid in [from, end). */
function domidOk(from: u32, end: u32): bool {
  const n = end - from;
  if (n == 0 || n > 5 || (n > 1 && at(from) == 0x30)) return false;
  let v: u32 = 0;
  for (let i = from; i < end; i++) {
    const c = at(i);
    if (c < 0x30 || c > 0x39) return false;
    v = v * 10 + (c - 0x30);
  }
  return v <= 65535;
}

/** `count` NUL-terminated decimal arguments and nothing after them. */
function decimalArgs(count: u32): bool {
  let from: u32 = 0;
  for (let k: u32 = 0; k < count; k++) {
    const e = argEnd(from);
    if (e < 0 || !domidOk(from, <u32> e)) return false;
    from = <u32> e + 1;
  }
  return from == len;
}

function check(op: u32): bool {
  switch (op) {
    case READ:
    case DIRECTORY:
    case GET_PERMS:
    case MKDIR:
    case RM: {
      const e = argEnd(0);
      return e >= 0 && <u32> e + 1 == len && pathOk(op, 0, <u32> e);
    }
    case DIRECTORY_PART:
    case SET_PERMS:
    case WATCH:
    case UNWATCH: {
      // path NUL, then NUL-terminated arguments (offset / permissions / token [, depth]).
      const e = argEnd(0);
      if (e < 0 || !pathOk(op, 0, <u32> e)) return false;
      return len > 0 && at(len - 1) == 0;
    }
    case WRITE: {
      const e = argEnd(0);
      if (e < 0 || !pathOk(op, 0, <u32> e)) return false;
      for (let i = <u32> e + 1; i < len; i++) {
        const c = at(i);
        if (c < 0x20 || c > 0x7e) return false;
      }
      return true;
    }
    case GET_DOMAIN_PATH:
    case IS_DOMAIN_INTRODUCED:
      return decimalArgs(1);
    case SET_TARGET:
      return decimalArgs(2);
    case INTRODUCE: {
      // domid NUL mfn NUL evtchn NUL: all plain decimal (the mfn may exceed 65535).
      const e = argEnd(0);
      return e >= 0 && domidOk(0, <u32> e) && len > 0 && at(len - 1) == 0;
    }
    default:
      return true;
  }
}

export function policy_decide(): i32 {
  readHeader(h);
  if (h.kind != KIND_MESSAGE) return answer(ALLOW, 0, 0);
  if (h.sub == RELEASE || h.sub == RESUME) return answer(DENY, ENOSYS, 0);
  loadPayload();
  return answer(check(h.sub) ? ALLOW : DENY, EINVAL, 0);
}
