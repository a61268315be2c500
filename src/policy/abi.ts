// The policy plugin ABI, version 1 (docs/plugins.md is the reference; keep the two in sync). A plugin
// exports two Extism functions, `policy_info` and `policy_decide`. The host encodes one question into
// the Extism input; the plugin answers with a few output bytes. Little endian, every section 8-byte
// aligned and the whole input padded to a multiple of 8, so a plugin can read it with input_load_u64.
import type { Errno } from "../common/xs_error.ts";
import type { Perms } from "../store/perms.ts";

export const ABI_VERSION = 1;

/** Question kinds (header byte 0). Bit k of a plugin's interest mask subscribes it to kind k. */
export const KIND_INFO = 0;
export const KIND_NODE = 1;
export const KIND_CREATE = 2;
export const KIND_SETPERMS = 3;
export const KIND_CAPABILITY = 4;
export const KIND_MESSAGE = 5;
export const KIND_COUNT = 6;

/** Header byte 2: flags. */
export const FLAG_PRIVILEGED = 1;
export const FLAG_HAS_TARGET = 2;
/** Node check made to decide whether a watch event may be delivered (not an access by the domain). */
export const FLAG_WATCH_EVENT = 4;
/** The request runs inside a transaction (message kind: tx_id != 0). */
export const FLAG_TRANSACTION = 8;
/** The path is a special path ("@introduceDomain", "@releaseDomain"...). */
export const FLAG_SPECIAL = 16;

/** Access codes (header byte 1 of a node question). */
export const ACCESS_CODES = { read: 0, write: 1, setperms: 2 } as const;

/** Capability codes (header byte 1 of a capability question). */
export const CAPABILITY_CODES = {
  "introduce": 1,
  "release": 2,
  "resume": 3,
  "set-target": 4,
  "is-domain-introduced": 5,
  "control": 6,
  "get-feature-other": 7,
  "set-feature": 8,
  "get-quota": 9,
  "set-quota": 10,
} as const;

/** Verdicts (output byte 0). */
export const VERDICT_ALLOW = 0;
export const VERDICT_DENY = 1;
/** Create questions only: the output carries replacement permissions from byte 4. */
export const VERDICT_REWRITE = 2;

/** Output byte 2: the decision depends only on kind, access, flags, domid, target and permissions. */
export const OUT_CACHEABLE = 1;

/** Linux errno numbers a plugin may answer with (output byte 1), and the XenStore names they map to. */
export const ERRNO_BY_NUMBER: ReadonlyMap<number, Errno> = new Map<number, Errno>([
  [1, "EPERM"],
  [2, "ENOENT"],
  [5, "EIO"],
  [7, "E2BIG"],
  [11, "EAGAIN"],
  [12, "ENOMEM"],
  [13, "EACCES"],
  [16, "EBUSY"],
  [17, "EEXIST"],
  [21, "EISDIR"],
  [22, "EINVAL"],
  [28, "ENOSPC"],
  [30, "EROFS"],
  [38, "ENOSYS"],
  [39, "ENOTEMPTY"],
  [106, "EISCONN"],
]);

/** Errno of a deny; 0 and unknown numbers mean EACCES. */
export function errnoOf(n: number): Errno {
  return ERRNO_BY_NUMBER.get(n) ?? "EACCES";
}

/** Largest encoded question: two permission lists of a 4 KiB payload each plus a 4 KiB path/payload. */
export const MAX_INPUT = 32768;

/** Encodes questions into a reusable buffer. */
export class QuestionEncoder {
  readonly buf = new Uint8Array(MAX_INPUT);
  private readonly view = new DataView(this.buf.buffer);
  length = 0;

  header(kind: number, sub: number, flags: number, domid: number, target: number): void {
    const v = this.view;
    v.setUint8(0, kind);
    v.setUint8(1, sub);
    v.setUint8(2, flags);
    v.setUint8(3, ABI_VERSION);
    v.setUint16(4, domid, true);
    v.setUint16(6, target, true);
    this.length = 8;
  }

  /** u16 owner, u8 other, u8 0, u16 count, u16 `extra`, then count × {u16 domid, u8 bits, u8 0}, padded. */
  perms(p: Perms, extra: number): void {
    const v = this.view;
    let at = this.length;
    const acl = p.acl;
    v.setUint16(at, p.owner, true);
    v.setUint8(at + 2, p.other);
    v.setUint8(at + 3, 0);
    v.setUint16(at + 4, acl.length, true);
    v.setUint16(at + 6, extra, true);
    at += 8;
    for (let i = 0; i < acl.length; i++) {
      v.setUint16(at, acl[i].domid, true);
      v.setUint8(at + 2, acl[i].bits);
      v.setUint8(at + 3, 0);
      at += 4;
    }
    this.length = at;
    this.pad();
  }

  /** Latin-1 string bytes (one char = one byte, as on the wire), padded. */
  latin1(s: string): void {
    const b = this.buf;
    let at = this.length;
    for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i);
    this.length = at;
    this.pad();
  }

  private pad(): void {
    while (this.length & 7) this.buf[this.length++] = 0;
  }
}
