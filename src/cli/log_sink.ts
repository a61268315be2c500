// Where the daemon's log lines go: stderr with "<N>" priority prefixes (the default; journald parses
// them), an append-only file reopened on SIGHUP (logrotate), or syslog's /dev/log datagram socket
// (`syslog` / `syslog:<facility>`, the form oxenstored's `xenstored-log-file` accepts).
import { type LogLevel, setLogSink } from "../common/log.ts";
import { ReopenableFile } from "../observe/reopenable.ts";
import { sendDatagram } from "./sys.ts";

export type LogDestination =
  | { readonly kind: "stderr" }
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
const enc = new TextEncoder();

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
    if (d.kind === "syslog") {
      const tag = `dxenstored[${Deno.pid}]`;
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
      if (!file.write(fileLine(prio, level, msg))) {
        // The file is gone or full: say so on stderr rather than losing lines silently.
        try {
          Deno.stderr.writeSync(enc.encode(`<${prio}>dxenstored: ${msg}\n`));
        } catch { /* nowhere to write */ }
      }
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
