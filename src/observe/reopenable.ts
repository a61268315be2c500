// An append-only text file that can be reopened after logrotate moved it away (SIGHUP): the daemon
// log, the access log. Writes are synchronous and never throw: logging must not take the daemon down.
const enc = new TextEncoder();

export class ReopenableFile {
  private file: Deno.FsFile | null = null;

  constructor(readonly path: string, private readonly mode = 0o640) {}

  /** Open (or reopen) the file; returns an error message or null. */
  open(): string | null {
    this.close();
    try {
      this.file = Deno.openSync(this.path, { append: true, create: true, mode: this.mode });
      return null;
    } catch (e) {
      return `cannot open ${this.path}: ${(e as Error).message}`;
    }
  }

  get isOpen(): boolean {
    return this.file !== null;
  }

  /** Append `text`; false if it could not be written (the caller decides whether to report it). */
  write(text: string): boolean {
    if (this.file === null) return false;
    const b = enc.encode(text);
    try {
      let off = 0;
      while (off < b.length) off += this.file.writeSync(b.subarray(off));
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.file === null) return;
    try {
      this.file.close();
    } catch { /* already closed */ }
    this.file = null;
  }
}
