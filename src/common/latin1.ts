// Bytes ↔ Latin-1 strings: one char per byte, so arbitrary binary values survive unchanged and V8
// stores them as one-byte strings. Every layer that turns wire or disk bytes into strings uses this.

/** Write `s` (chars < 256) into `buf` from `off`, one byte per char; returns the offset after it. */
export function writeLatin1(buf: Uint8Array, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[off + i] = s.charCodeAt(i);
  return off + s.length;
}

/** Decode bytes [start, end) of `buf` as a Latin-1 string. */
export function latin1(buf: Uint8Array, start = 0, end = buf.length): string {
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
