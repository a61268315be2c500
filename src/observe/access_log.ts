// The access log, in oxenstored's format (what XCP-ng operators already grep):
//
//   [20261125T12:23:54.130Z]  A16          write     /t/a 1
//
// UTC time, the connection ("A<n>" a socket connection, "D<domid>" a guest; ".<tid>" inside a
// transaction), the operation padded to 9, the request payload with NULs as spaces and OCaml-style
// escapes. As oxenstored: reads, directory listings and GET_PERMS only with `readOps`, transaction
// start/end only with `transactionOps`, domain management only with `specialOps`; error replies
// (except ENOENT without readOps) and watch events always. Values written under a redacted path
// (default: clipboard contents, XCP-ng's CA-136105) are replaced by "[omitted]". It is also the
// trace log of `-T`, `log on|off`, `logfile` and `print` (xenstore-control).
import { MsgType } from "../protocol/wire.ts";
import type { TraceLog } from "../dispatch/control.ts";
import { ReopenableFile } from "./reopenable.ts";

export interface AccessLogOptions {
  readonly readOps: boolean;
  readonly transactionOps: boolean;
  readonly specialOps: boolean;
  /** Glob patterns ("*" matches anything, "/" included) of paths whose written values are omitted. */
  readonly redact: readonly string[];
  /** Lines are cut to this many characters (oxenstored's access-log-nb-chars). */
  readonly maxLineChars: number;
}

export const DEFAULT_REDACT: readonly string[] = ["*/data/set_clipboard", "*/data/report_clipboard"];

export const DEFAULT_ACCESS_LOG: AccessLogOptions = {
  readOps: false,
  transactionOps: false,
  specialOps: false,
  redact: DEFAULT_REDACT,
  maxLineChars: 180,
};

// xs_wire.h type numbers: the protocol's own table (pure data, no codec).
const T = MsgType;

/** oxenstored's operation names (Logging.string_of_access_type), padded to 9 where they are shorter. */
const OP_NAMES: Readonly<Record<number, string>> = {
  0: "debug",
  1: "directory",
  2: "read",
  3: "getperms",
  4: "watch",
  5: "unwatch",
  6: "t start",
  7: "t end",
  8: "introduce",
  9: "release",
  10: "getdomain",
  11: "write",
  12: "mkdir",
  13: "rm",
  14: "setperms",
  15: "w event",
  16: "error",
  17: "is introduced",
  18: "resume",
  19: "settarget",
  20: "restrict",
  21: "reset watches",
  22: "directory part",
  23: "get feature",
  24: "set feature",
  25: "get quota",
  26: "set quota",
};

const READ_OPS = new Set<number>([T.READ, T.DIRECTORY, T.DIRECTORY_PART, T.GET_PERMS]);
const SPECIAL_OPS = new Set<number>([
  T.INTRODUCE,
  T.RELEASE,
  T.GET_DOMAIN_PATH,
  T.IS_DOMAIN_INTRODUCED,
  T.RESUME,
]);

/** Who made a request, as the access log names it. */
export interface Conn {
  readonly id: number;
  readonly domid: number;
  readonly privileged: boolean;
}

export function connName(c: Conn): string {
  return c.domid === 0 && c.privileged ? `A${c.id}` : `D${c.domid}`;
}

/** oxenstored's date: 20261125T12:23:54.130Z (UTC). */
export function accessDate(d: Date): string {
  const iso = d.toISOString(); // 2026-11-25T12:23:54.130Z
  return iso.slice(0, 10).replaceAll("-", "") + iso.slice(10);
}

/** NULs as spaces, then OCaml's String.escaped (\\ \" \n \t \r \b, other non-printables as \ddd). */
export function sanitize(data: string): string {
  let out = "";
  for (let i = 0; i < data.length; i++) {
    const c = data.charCodeAt(i);
    if (c === 0) out += " ";
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x22) out += '\\"';
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x08) out += "\\b";
    else if (c < 0x20 || c > 0x7e) out += "\\" + String(c).padStart(3, "0");
    else out += data[i];
  }
  return out;
}

/** A glob ("*" = any run of characters) as an anchored RegExp. */
function globRegExp(glob: string): RegExp {
  const body = glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`);
}

export class AccessLog implements TraceLog {
  private out: ReopenableFile | null = null;
  private path: string | null;
  private enabled: boolean;
  private readonly redactRe: readonly RegExp[];

  constructor(
    path: string | null,
    readonly opts: AccessLogOptions = DEFAULT_ACCESS_LOG,
    private readonly now: () => Date = () => new Date(),
    /** Where to report a file that cannot be opened. */
    private readonly warn: (msg: string) => void = () => {},
  ) {
    this.path = path;
    this.enabled = path !== null;
    this.redactRe = opts.redact.map(globRegExp);
    if (this.enabled) this.openFile();
  }

  /** Lines are being written. */
  get active(): boolean {
    return this.out !== null && this.out.isOpen;
  }

  file(): string | null {
    return this.path;
  }

  on(): void {
    this.enabled = true;
    this.openFile();
  }

  off(): void {
    this.enabled = false;
    if (this.out !== null) this.out.close();
    this.out = null;
  }

  setFile(path: string): void {
    this.off();
    this.path = path;
    this.on();
  }

  /** SIGHUP: reopen the file (logrotate moved it away). */
  reopen(): void {
    if (this.enabled) this.openFile();
  }

  close(): void {
    this.off();
  }

  print(text: string): void {
    this.line("=======>", "debug", text);
  }

  /** A free-form note (memreport, check results) under the "debug" operation. */
  note(conn: string, text: string): void {
    this.line(conn, "debug", text);
  }

  newConnection(c: Conn): void {
    if (this.active) this.line(connName(c), "newconn", "");
  }

  endConnection(c: Conn): void {
    if (this.active) this.line(connName(c), "endconn", "");
  }

  /** One request and its reply. `payload` is the request's; `errno` is set for an ERROR reply. */
  request(c: Conn, type: number, txId: number, payload: string, errno: string | null): void {
    if (!this.active) return;
    const conn = txId === 0 ? connName(c) : `${connName(c)}.${txId}`;
    const o = this.opts;
    let logRequest = true;
    if (READ_OPS.has(type)) logRequest = o.readOps;
    else if (type === T.TRANSACTION_START || type === T.TRANSACTION_END) logRequest = o.transactionOps;
    else if (SPECIAL_OPS.has(type)) logRequest = o.specialOps;
    if (logRequest) this.line(conn, OP_NAMES[type] ?? `op${type}`, this.requestData(type, payload));
    if (type === T.TRANSACTION_END && payload.startsWith("T")) {
      this.line(conn, errno === null ? "commit" : errno === "EAGAIN" ? "conflict" : "error", errno ?? "");
      return;
    }
    if (errno !== null && (errno !== "ENOENT" || o.readOps)) this.line(conn, "error", errno + " ");
  }

  watchEvent(c: Conn, path: string, token: string): void {
    if (this.active) this.line(connName(c), "w event", sanitize(`${path}\0${token}\0`));
  }

  private requestData(type: number, payload: string): string {
    if (type === T.WRITE) {
      const nul = payload.indexOf("\0");
      const path = nul < 0 ? payload : payload.slice(0, nul);
      if (nul >= 0 && this.redactRe.some((re) => re.test(path))) return `${sanitize(path)} [omitted]`;
    }
    return sanitize(payload);
  }

  private line(conn: string, op: string, data: string): void {
    if (this.out === null) return;
    let l = `[${accessDate(this.now())}]  ${conn.padEnd(12)} ${op.padEnd(9)} ${data}`;
    if (l.length > this.opts.maxLineChars) l = l.slice(0, this.opts.maxLineChars);
    this.out.write(l + "\n");
  }

  private openFile(): void {
    if (this.path === null) return;
    if (this.out === null || this.out.path !== this.path) {
      if (this.out !== null) this.out.close();
      this.out = new ReopenableFile(this.path, 0o600);
    }
    const err = this.out.open();
    if (err !== null) this.warn(`access log: ${err}`);
  }
}
