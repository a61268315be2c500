// Where the daemon's log lines go: stderr with "<N>" priority prefixes (the default; journald parses
// them), an append-only file reopened on SIGHUP (logrotate), syslog's /dev/log datagram socket
// (`syslog` / `syslog:<facility>`, the form oxenstored's `xenstored-log-file` accepts), or, when
// stderr is the journal, journald's native socket: a stream's lines carry the identifier of whoever
// opened it (under Debian's /etc/init.d/xen that is "xen"), native entries carry ours.
import { type LogLevel, setLogSink } from "../common/log.ts";
import { ReopenableFile } from "../observe/reopenable.ts";
import { DAEMON_NAME } from "./process_name.ts";
import { sendDatagram } from "./sys.ts";

export type LogDestination =
  | { readonly kind: "stderr" }
  | { readonly kind: "journal" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "syslog"; readonly facility: number };

/** syslog(3) facility numbers by name. */
const FACILITIES: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** "stderr" | "syslog[:facility]" | an absolute or relative file path. */
export function parseLogDestination(s: string): LogDestination | string {
  if (s === "") return "empty log destination";
  if (s === "stderr") return { kind: "stderr" };
  if (s === "syslog") return { kind: "syslog", facility: FACILITIES.daemon };
  if (s.startsWith("syslog:")) {
    const f = FACILITIES[s.slice(7)];
    if (f === undefined) return `unknown syslog facility "${s.slice(7)}"`;
    return { kind: "syslog", facility: f };
  }
  return { kind: "file", path: s };
}

export const SYSLOG_SOCKET = "/dev/log";
/** journald's socket for native entries (sd_journal_send). */
export const JOURNAL_SOCKET = "/run/systemd/journal/socket";
const enc = new TextEncoder();

/**
 * Is stderr the journal? systemd sets JOURNAL_STREAM to "<st_dev>:<st_ino>" of the stream it connects
 * a service's stderr to; the variable is inherited further, so the inode must match too.
 */
export function stderrIsJournal(env: string | undefined = Deno.env.get("JOURNAL_STREAM")): boolean {
  const m = env === undefined ? null : /^([0-9]+):([0-9]+)$/.exec(env);
  if (m === null) return false;
  try {
    const st = Deno.statSync("/proc/self/fd/2");
    return String(st.dev) === m[1] && String(st.ino) === m[2];
  } catch {
    return false;
  }
}

/** One native journal entry (journald's protocol: KEY=value lines; a value with a newline in binary form). */
export function journalEntry(priority: number, msg: string): Uint8Array {
  const head = enc.encode(`PRIORITY=${priority}\nSYSLOG_IDENTIFIER=${DAEMON_NAME}\nSYSLOG_PID=${Deno.pid}\n`);
  const text = enc.encode(msg);
  if (!text.includes(10)) return concat(head, enc.encode("MESSAGE="), text, enc.encode("\n"));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(text.length), true);
  return concat(head, enc.encode("MESSAGE\n"), len, text, enc.encode("\n"));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function writeStderr(prio: number, msg: string): void {
  try {
    Deno.stderr.writeSync(enc.encode(`<${prio}>${DAEMON_NAME}: ${msg}\n`));
  } catch { /* nowhere to write */ }
}

/** The active destination; reopen() is what SIGHUP calls. */
export class LogOutput {
  private file: ReopenableFile | null = null;

  constructor(readonly dest: LogDestination) {}

  /** Install as the process-wide log sink. Returns an error message if a log file cannot be opened. */
  install(): string | null {
    const d = this.dest;
    if (d.kind === "stderr") {
      setLogSink(null);
      return null;
    }
    if (d.kind === "journal") {
      // journald restarting (or a message it refuses): the line goes to the stream instead.
      setLogSink((prio, _level, msg) => {
        if (!sendDatagram(JOURNAL_SOCKET, journalEntry(prio, msg))) writeStderr(prio, msg);
      });
      return null;
    }
    if (d.kind === "syslog") {
      const tag = `${DAEMON_NAME}[${Deno.pid}]`;
      setLogSink((prio, _level, msg) => {
        // RFC 3164 without a timestamp: rsyslog and journald's /dev/log both accept it.
        sendDatagram(SYSLOG_SOCKET, enc.encode(`<${d.facility * 8 + prio}>${tag}: ${msg}`));
      });
      return null;
    }
    this.file = new ReopenableFile(d.path);
    const err = this.file.open();
    const file = this.file;
    setLogSink((prio, level, msg) => {
      // The file is gone or full: say so on stderr rather than losing lines silently.
      if (!file.write(fileLine(prio, level, msg))) writeStderr(prio, msg);
    });
    return err;
  }

  /** Reopen a log file (after rotation); returns an error message or null. */
  reopen(): string | null {
    return this.file === null ? null : this.file.open();
  }

  close(): void {
    if (this.file !== null) this.file.close();
    setLogSink(null);
  }
}

/** A log file line: ISO time, level, message ("<N>" prefixes are for journald, not files). */
export function fileLine(_prio: number, level: LogLevel, msg: string): string {
  return `${new Date().toISOString()} ${level.padEnd(5)} ${msg}\n`;
}
