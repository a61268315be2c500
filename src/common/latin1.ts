// Bytes ↔ Latin-1 strings: one char per byte, so arbitrary binary values survive unchanged and V8
// stores them as one-byte strings. Every layer that turns wire or disk bytes into strings uses this.

/** Write `s` (chars < 256) into `buf` from `off`, one byte per char; returns the offset after it. */
export function writeLatin1(buf: Uint8Array, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[off + i] = s.charCodeAt(i);
  return off + s.length;
}

/** Up to this many bytes are decoded without a subarray and an argument list (latin1()). */
const SHORT = 64;
const fromCharCode = String.fromCharCode;

/** Decode bytes [start, end) of `buf` as a Latin-1 string. */
export function latin1(buf: Uint8Array, start = 0, end = buf.length): string {
  if (end - start <= SHORT) return latin1Short(buf, start, end);
  // String.fromCharCode over chunks: exact for every byte value (TextDecoder's "latin1" is really
  // windows-1252 and would remap 0x80..0x9f); chunks keep the argument count below the engine's limit.
  const CHUNK = 8192;
  if (end - start <= CHUNK) {
    return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  }
  let s = "";
  for (let i = start; i < end; i += CHUNK) {
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + CHUNK)) as unknown as number[]);
  }
  return s;
}

/**
 * A short range (a request's path, a READ's reply): String.fromCharCode on eight bytes at a time. The
 * form above (a subarray, then its bytes copied into an argument list) cost ~2 900 instructions for
 * 22 bytes under callgrind, this ~2 400 (issue 20: every request's payload is decoded so).
 */
function latin1Short(b: Uint8Array, start: number, end: number): string {
  let s = "";
  let i = start;
  for (; i + 8 <= end; i += 8) {
    s += fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
  }
  switch (end - i) {
    case 0:
      return s;
    case 1:
      return s + fromCharCode(b[i]);
    case 2:
      return s + fromCharCode(b[i], b[i + 1]);
    case 3:
      return s + fromCharCode(b[i], b[i + 1], b[i + 2]);
    case 4:
      return s + fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3]);
    case 5:
      return s + fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4]);
    case 6:
      return s + fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]);
    default:
      return s + fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6]);
  }
}
