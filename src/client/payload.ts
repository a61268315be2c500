// What each request carries and what its reply means (xenstore.txt, xs_wire.h): the one place the
// client side builds payloads and reads replies, shared by XenStore and GuestClient. Payloads are
// Latin-1 strings (one char per byte), as in the codec; values cross the API as UTF-8 strings or bytes.
import { latin1 } from "../common/latin1.ts";

/** One permission entry: `n` none, `r` read, `w` write, `b` both. Entry 0 is the owner (and everyone else's access). */
export interface Perm {
  readonly domid: number;
  readonly access: "n" | "r" | "w" | "b";
}

/** "a\0b\0" → ["a", "b"]; "" → []. */
export function splitNul(p: string): string[] {
  if (p === "") return [];
  const parts = p.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** ["a", "b"] → "a\0b\0". */
export function joinNul(args: readonly string[]): string {
  let s = "";
  for (const a of args) s += a + "\0";
  return s;
}

// deno-lint-ignore no-control-regex -- NUL and other control bytes are valid value bytes
const ASCII = /^[\x00-\x7f]*$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A value or path as the wire wants it: UTF-8 bytes as a Latin-1 string (ASCII is unchanged). */
export function toWire(v: string | Uint8Array): string {
  if (typeof v !== "string") return latin1(v);
  return ASCII.test(v) ? v : latin1(enc.encode(v));
}

/** Wire bytes (a Latin-1 string) as UTF-8 text; invalid sequences become U+FFFD. */
export function fromWire(s: string): string {
  return ASCII.test(s) ? s : dec.decode(wireBytes(s));
}

/** Wire bytes as bytes. */
export function wireBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

const PERM = /^([nrwb])([0-9]{1,5})$/;

/** "b0" → {domid: 0, access: "b"}; throws RangeError on anything else. */
export function parsePerm(s: string): Perm {
  const m = PERM.exec(s);
  if (m === null || Number(m[2]) > 0xffff) {
    throw new RangeError(`bad permission "${s}" (want n|r|w|b and a domid)`);
  }
  return { domid: Number(m[2]), access: m[1] as Perm["access"] };
}

export function formatPerm(p: Perm | string): string {
  if (typeof p === "string") return formatPerm(parsePerm(p));
  if (!Number.isInteger(p.domid) || p.domid < 0 || p.domid > 0xffff) {
    throw new RangeError(`bad domid ${p.domid}`);
  }
  if (!"nrwb".includes(p.access) || p.access.length !== 1) throw new RangeError(`bad access "${p.access}"`);
  return `${p.access}${p.domid}`;
}

/** GET_PERMS reply → entries. */
export function parsePermsReply(payload: string): Perm[] {
  return splitNul(payload).map(parsePerm);
}

/** WATCH payload; `depth` is dxenstored's extension (feature bit 4). */
export function watchPayload(path: string, token: string, depth?: number): string {
  return `${path}\0${token}\0${depth === undefined ? "" : `${depth}\0`}`;
}

/** The transaction id of a TRANSACTION_START reply. */
export function parseTxId(payload: string): number {
  const s = splitNul(payload)[0] ?? "";
  if (!/^[0-9]{1,10}$/.test(s) || Number(s) === 0 || Number(s) > 0xffffffff) {
    throw new RangeError(`bad transaction id "${s.slice(0, 16)}" from the daemon`);
  }
  return Number(s);
}

/** A decimal u32 reply (GET_FEATURE, GET_QUOTA <name>). */
export function parseU32(payload: string, what: string): number {
  const s = splitNul(payload)[0] ?? "";
  if (!/^[0-9]{1,10}$/.test(s) || Number(s) > 0xffffffff) {
    throw new RangeError(`bad ${what} "${s.slice(0, 16)}"`);
  }
  return Number(s);
}

/** One DIRECTORY_PART reply: the generation, the names in it, and whether the list ended. */
export function parseDirectoryPart(
  payload: string,
): { gen: string; names: string[]; bytes: number; end: boolean } {
  const nul = payload.indexOf("\0");
  if (nul < 0) throw new RangeError("DIRECTORY_PART reply without a generation");
  const gen = payload.slice(0, nul);
  const rest = payload.slice(nul + 1);
  // "" (an empty directory), or names each with a NUL and, at the end of the list, one more NUL.
  const end = rest === "" || rest.endsWith("\0\0") || rest === "\0";
  const body = end && rest !== "" ? rest.slice(0, -1) : rest;
  return { gen, names: splitNul(body), bytes: body.length, end };
}
