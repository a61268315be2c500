// Payload parsing: a framed Message becomes a typed Request. Syntax only — paths stay raw strings
// (validation and resolution against the caller's domain happen in the dispatcher), and no decision
// about permissions or existence is made here. Malformed payloads throw XsError("EINVAL").
import { XsError } from "../common/xs_error.ts";
import type { Message } from "./codec.ts";
import { MsgType } from "./wire.ts";

export type Request =
  | {
    readonly op: MsgType.READ | MsgType.GET_PERMS | MsgType.DIRECTORY | MsgType.MKDIR | MsgType.RM;
    readonly path: string;
  }
  | { readonly op: MsgType.WRITE; readonly path: string; readonly value: string }
  | { readonly op: MsgType.DIRECTORY_PART; readonly path: string; readonly offset: number }
  | { readonly op: MsgType.SET_PERMS; readonly path: string; readonly perms: readonly string[] }
  | {
    readonly op: MsgType.WATCH;
    readonly path: string;
    readonly token: string;
    readonly depth: number | undefined;
  }
  | { readonly op: MsgType.UNWATCH; readonly path: string; readonly token: string }
  | { readonly op: MsgType.TRANSACTION_START }
  | { readonly op: MsgType.TRANSACTION_END; readonly commit: boolean }
  | { readonly op: MsgType.INTRODUCE; readonly domid: number; readonly gfn: number; readonly port: number }
  | {
    readonly op:
      | MsgType.RELEASE
      | MsgType.RESUME
      | MsgType.IS_DOMAIN_INTRODUCED
      | MsgType.GET_DOMAIN_PATH;
    readonly domid: number;
  }
  | { readonly op: MsgType.SET_TARGET; readonly domid: number; readonly target: number }
  | { readonly op: MsgType.RESET_WATCHES }
  | { readonly op: MsgType.CONTROL; readonly args: readonly string[] }
  | { readonly op: MsgType.GET_FEATURE; readonly domid: number | undefined }
  | { readonly op: MsgType.SET_FEATURE; readonly domid: number; readonly features: number }
  | { readonly op: MsgType.GET_QUOTA; readonly domid: number | undefined; readonly name: string | undefined }
  | {
    readonly op: MsgType.SET_QUOTA;
    readonly domid: number | undefined;
    readonly name: string;
    readonly value: number;
  };

function einval(detail: string): never {
  throw new XsError("EINVAL", detail);
}

/** Split a payload of NUL-terminated strings. The payload must end with a NUL (or be empty). */
export function splitArgs(payload: string): string[] {
  if (payload.length === 0) return [];
  if (payload.charCodeAt(payload.length - 1) !== 0) einval("payload not NUL-terminated");
  return payload.slice(0, -1).split("\0");
}

/** Exactly `n` NUL-terminated arguments. */
function args(payload: string, n: number): string[] {
  const a = splitArgs(payload);
  if (a.length !== n) einval(`expected ${n} argument(s), got ${a.length}`);
  return a;
}

/**
 * The one NUL-terminated argument of a path request (READ, DIRECTORY...): the common case sliced out
 * directly; any other payload goes through args(), which refuses it with the same error as before.
 */
function oneArg(payload: string): string {
  const nul = payload.indexOf("\0");
  if (nul >= 0 && nul === payload.length - 1) return payload.slice(0, nul);
  return args(payload, 1)[0];
}

/** A strict unsigned decimal number ≤ max (no sign, no hex, no spaces; "0" allowed, "00" allowed). */
export function parseDecimal(s: string, max: number, what: string): number {
  if (s.length === 0 || s.length > 10 || !/^[0-9]+$/.test(s)) einval(`bad ${what} "${s.slice(0, 20)}"`);
  const n = Number(s);
  if (n > max) einval(`${what} out of range`);
  return n;
}

export const parseDomid = (s: string) => parseDecimal(s, 0xffff, "domid");
const parseU32 = (s: string, what: string) => parseDecimal(s, 0xffffffff, what);

/** Parse a framed message into a typed request. Unknown types throw ENOSYS. */
export function parseRequest(m: Message): Request {
  const p = m.payload;
  switch (m.type) {
    case MsgType.READ:
    case MsgType.GET_PERMS:
    case MsgType.DIRECTORY:
    case MsgType.MKDIR:
    case MsgType.RM:
      return { op: m.type, path: oneArg(p) };
    case MsgType.WRITE: {
      const nul = p.indexOf("\0");
      if (nul < 0) einval("WRITE without NUL after the path");
      return { op: MsgType.WRITE, path: p.slice(0, nul), value: p.slice(nul + 1) };
    }
    case MsgType.DIRECTORY_PART: {
      const [path, off] = args(p, 2);
      return { op: MsgType.DIRECTORY_PART, path, offset: parseU32(off, "offset") };
    }
    case MsgType.SET_PERMS: {
      const a = splitArgs(p);
      if (a.length < 2) einval("SET_PERMS needs a path and at least one permission");
      return { op: MsgType.SET_PERMS, path: a[0], perms: a.slice(1) };
    }
    case MsgType.WATCH: {
      const a = splitArgs(p);
      if (a.length === 2) return { op: MsgType.WATCH, path: a[0], token: a[1], depth: undefined };
      if (a.length === 3) {
        return { op: MsgType.WATCH, path: a[0], token: a[1], depth: parseDecimal(a[2], 0xffff, "depth") };
      }
      return einval("WATCH takes a path, a token and an optional depth");
    }
    case MsgType.UNWATCH: {
      const a = splitArgs(p);
      // libxenstore sends exactly two strings; tolerate a trailing reserved empty argument.
      if (a.length !== 2 && !(a.length === 3 && a[2] === "")) einval("UNWATCH takes a path and a token");
      return { op: MsgType.UNWATCH, path: a[0], token: a[1] };
    }
    case MsgType.TRANSACTION_START:
      // libxenstore sends "" + NUL; an empty payload is accepted too.
      if (p !== "" && p !== "\0") einval("TRANSACTION_START takes no argument");
      return { op: MsgType.TRANSACTION_START };
    case MsgType.TRANSACTION_END: {
      const [tf] = args(p, 1);
      if (tf !== "T" && tf !== "F") einval("TRANSACTION_END takes T or F");
      return { op: MsgType.TRANSACTION_END, commit: tf === "T" };
    }
    case MsgType.INTRODUCE: {
      const a = splitArgs(p);
      if (a.length < 3 || a.length > 4) einval("INTRODUCE takes domid, gfn, port");
      return {
        op: MsgType.INTRODUCE,
        domid: parseDomid(a[0]),
        gfn: parseU32(a[1], "gfn"),
        port: parseU32(a[2], "port"),
      };
    }
    case MsgType.RELEASE:
    case MsgType.RESUME:
    case MsgType.IS_DOMAIN_INTRODUCED:
    case MsgType.GET_DOMAIN_PATH:
      return { op: m.type, domid: parseDomid(args(p, 1)[0]) };
    case MsgType.SET_TARGET: {
      const [d, t] = args(p, 2);
      return { op: MsgType.SET_TARGET, domid: parseDomid(d), target: parseDomid(t) };
    }
    case MsgType.RESET_WATCHES:
      if (p !== "" && p !== "\0") einval("RESET_WATCHES takes no argument");
      return { op: MsgType.RESET_WATCHES };
    case MsgType.CONTROL: {
      const a = splitArgs(p);
      if (a.length === 0 || a[0] === "") einval("CONTROL needs a command");
      return { op: MsgType.CONTROL, args: a };
    }
    case MsgType.GET_FEATURE: {
      const a = splitArgs(p);
      if (a.length > 1) einval("GET_FEATURE takes an optional domid");
      return { op: MsgType.GET_FEATURE, domid: a.length === 1 ? parseDomid(a[0]) : undefined };
    }
    case MsgType.SET_FEATURE: {
      const [d, v] = args(p, 2);
      return { op: MsgType.SET_FEATURE, domid: parseDomid(d), features: parseU32(v, "features") };
    }
    case MsgType.GET_QUOTA: {
      const a = splitArgs(p);
      if (a.length === 0) return { op: MsgType.GET_QUOTA, domid: undefined, name: undefined };
      if (a.length === 1) return { op: MsgType.GET_QUOTA, domid: undefined, name: a[0] };
      if (a.length === 2) return { op: MsgType.GET_QUOTA, domid: parseDomid(a[0]), name: a[1] };
      return einval("GET_QUOTA takes [[domid] name]");
    }
    case MsgType.SET_QUOTA: {
      const a = splitArgs(p);
      if (a.length === 2) {
        return { op: MsgType.SET_QUOTA, domid: undefined, name: a[0], value: parseU32(a[1], "value") };
      }
      if (a.length === 3) {
        return { op: MsgType.SET_QUOTA, domid: parseDomid(a[0]), name: a[1], value: parseU32(a[2], "value") };
      }
      return einval("SET_QUOTA takes [domid] name value");
    }
    default:
      // WATCH_EVENT, ERROR, RESTRICT and unknown numbers: not requests a client may send.
      throw new XsError("ENOSYS", `message type ${m.type}`);
  }
}
