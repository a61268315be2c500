// dxenstored(8), generated from the option table (src/cli/options.ts) and the configuration keys
// (src/cli/config.ts), so the man page says what --help says. `deno task build` writes it to
// build/dxenstored.8; the .deb installs it gzipped as /usr/share/man/man8/dxenstored.8.gz.
//
//   bin/deno run -A compile/manpage.ts > dxenstored.8 && man -l dxenstored.8
import { OPTIONS, type OptionSpec } from "../src/cli/options.ts";
import { CONFIG_KEYS } from "../src/cli/config.ts";
import { DEFAULT_CONFIG_FILE, DEFAULT_ROOTDIR, DEFAULT_RUNDIR } from "../src/cli/options.ts";
import { PROGRAM_NAME } from "./program.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Where the .deb puts the documentation the man page points to. */
export const DOC_DIR = "/usr/share/doc/dxenstored";

/** Escape text for roff: backslashes, and a leading dot or quote that would start a request. */
export function roff(s: string): string {
  const t = s.replace(/\\/g, "\\e").replace(/-/g, "\\-");
  return /^[.']/.test(t) ? `\\&${t}` : t;
}

function optionHead(o: OptionSpec): string {
  const names = [o.short ? `\\fB\\-${o.short}\\fR` : null, o.long ? `\\fB\\-\\-${roff(o.long)}\\fR` : null]
    .filter((s) => s !== null).join(", ");
  const meta = o.metavar ?? "VALUE";
  const arg = o.arg === "required"
    ? ` \\fI${roff(meta)}\\fR`
    : o.arg === "optional"
    ? ` [\\fI${roff(meta)}\\fR]`
    : "";
  return names + arg;
}

/**
 * A help text of the table as a man page sentence: docs/X.md becomes the installed document, and
 * --help's "this text" says what it is.
 */
function sentence(help: string): string {
  const t = help === "this text" ? "print the option summary and exit" : help;
  const installed = t.replace(/\bdocs\/([a-z]+\.md)\b/g, `${DOC_DIR}/$1`);
  return roff(/[.!?]$/.test(installed) ? installed : `${installed}.`);
}

function optionBody(o: OptionSpec): string {
  const from = o.origin.filter((x) => x !== "dxenstored");
  const notes: string[] = [];
  if (o.status === "ignored") {
    notes.push("Accepted for compatibility; no effect in dxenstored (a warning is logged).");
  }
  if (o.status === "refused") notes.push("Refused: dxenstored exits with an error.");
  if (from.length > 0) notes.push(`From ${from.join(" and ")}.`);
  return [sentence(o.help), ...notes.map(roff)].join(" ");
}

function version(): string {
  try {
    return JSON.parse(Deno.readTextFileSync(`${ROOT}package.json`)).version;
  } catch {
    return "";
  }
}

/** The man page source (roff, man macros). */
export function manPage(): string {
  const xen = OPTIONS.filter((o) => !o.hidden && o.origin.some((x) => x !== "dxenstored"));
  const own = OPTIONS.filter((o) => !o.hidden && o.origin.every((x) => x === "dxenstored"));
  const hidden = OPTIONS.filter((o) => o.hidden);
  const L: string[] = [
    `.TH DXENSTORED 8 "" "dxenstored ${version()}" "System Administration"`,
    ".SH NAME",
    `${PROGRAM_NAME} \\- XenStore daemon, a drop\\-in for xenstored and oxenstored`,
    ".SH SYNOPSIS",
    `.B ${PROGRAM_NAME}`,
    ".RI [ options ]",
    ".br",
    `.B ${PROGRAM_NAME}`,
    ".BR export | import",
    ".RI [ options ]",
    ".SH DESCRIPTION",
    ".B dxenstored",
    "serves the XenStore protocol of Xen's cxenstored and oxenstored 4.17 on a dom0: the",
    "configuration database of a Xen host, shared by the toolstack (xl, libxl), the xenstore\\-* tools and",
    "the guests' drivers.",
    "It accepts the command lines of both daemons and the keys of",
    ".IR oxenstored.conf ,",
    "forks into the background by default (the started process returns once the socket accepts",
    "connections), holds a locked pid file, notifies systemd, and logs a line for every refused request.",
    ".PP",
    "Options on the command line override the configuration file",
    `.RI ( ${roff(DEFAULT_CONFIG_FILE)} ,`,
    "or the file given with",
    ".BR \\-\\-config\\-file ).",
    ".SH OPTIONS",
    ".SS Options of Xen's cxenstored and oxenstored",
  ];
  for (const o of xen) L.push(".TP", optionHead(o), optionBody(o));
  L.push(".SS dxenstored options");
  for (const o of own) L.push(".TP", optionHead(o), optionBody(o));
  if (hidden.length > 0) {
    L.push(
      ".SS Other accepted spellings",
      roff(
        `Accepted as well, not listed by --help: ${
          hidden.map((o) => o.long ? `--${o.long}` : `-${o.short}`).join(", ")
        }.`,
      ),
    );
  }
  L.push(
    ".SH SUBCOMMANDS",
    ".TP",
    "\\fBdxenstored export\\fR [\\fIoptions\\fR]",
    "Write a store (a backend's files, or a running daemon's socket) as a portable snapshot.",
    ".TP",
    "\\fBdxenstored import\\fR [\\fIoptions\\fR]",
    "Load a snapshot into a store or a running daemon.",
    "Each prints its options with",
    ".BR \\-\\-help .",
    ".SH CONFIGURATION FILE",
    "Lines of",
    ".IR key \\ =\\ value ;",
    ".B #",
    "starts a comment. Keys:",
  );
  for (const k of CONFIG_KEYS) {
    const note = k.status === "ignored" ? " Accepted for compatibility; no effect." : "";
    L.push(
      ".TP",
      `\\fB${roff(k.key)}\\fR`,
      sentence(k.help) + note,
    );
  }
  L.push(
    ".SH ENVIRONMENT",
    ".TP",
    ".B XENSTORED_PATH",
    "The socket, if no option names one.",
    ".TP",
    ".B XENSTORED_RUNDIR",
    `Run folder; the socket is \\fI$XENSTORED_RUNDIR/socket\\fR (default \\fI${roff(DEFAULT_RUNDIR)}\\fR).`,
    ".TP",
    ".B XENSTORED_ROOTDIR",
    `State folder, created at start (default \\fI${roff(DEFAULT_ROOTDIR)}\\fR).`,
    ".TP",
    ".B NOTIFY_SOCKET",
    "systemd readiness: the daemon process sends READY=1 once it serves.",
    ".TP",
    ".B JOURNAL_STREAM",
    "When standard error is the journal, log lines go to journald directly, with",
    ".B SYSLOG_IDENTIFIER=dxenstored",
    "and their priority.",
    ".SH SIGNALS",
    ".TP",
    ".BR SIGTERM ",
    " SIGINT",
    "Stop: the socket and the pid file are removed, the store is closed after its last commit.",
    ".TP",
    ".B SIGHUP",
    "Reopen the log files and reload the policy chain.",
    ".SH EXIT STATUS",
    "0: started (or already running), or stopped cleanly;",
    "1: the daemon could not start (pid file, store, policy, socket, Xen): one line, on the terminal that",
    "started it and in its log, says what failed, on which path, and the errno's name;",
    "2: bad options, or a bad configuration with",
    ".BR \\-\\-config\\-test .",
    ".SH FILES",
    ".TP",
    `.I ${roff(DEFAULT_CONFIG_FILE)}`,
    "The configuration file.",
    ".TP",
    ".I /usr/lib/dxenstored/",
    "The program (one JavaScript file) and the Deno runtime that runs it.",
    ".TP",
    `.I ${roff(DOC_DIR)}/`,
    "The operator's guide (operations.md) and the documents it refers to.",
    ".SH SEE ALSO",
    ".BR xenstore\\-read (1),",
    ".BR xenstore\\-write (1),",
    ".BR xenstore\\-ls (1),",
    ".BR xl (1),",
    ".BR systemd.service (5),",
    ".BR journalctl (1);",
    `.I ${roff(DOC_DIR)}/operations.md`,
    "",
  );
  return L.join("\n");
}

if (import.meta.main) Deno.stdout.writeSync(new TextEncoder().encode(manPage()));
