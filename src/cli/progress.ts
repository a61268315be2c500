// The progress line of a long migration (`dxenstored export|import`): on a terminal only, on stderr
// (stdout may carry the data), redrawn at most PROGRESS_INTERVAL_MS apart and erased at the end, where
// the caller prints its summary. Not a terminal (a pipe, a log file, a test): nothing at all.

export const PROGRESS_INTERVAL_MS = 100;

export interface ProgressOutput {
  readonly isTerminal: boolean;
  write(text: string): void;
}

const enc = new TextEncoder();

/** Standard error, as the progress line's output. */
export const STDERR: ProgressOutput = {
  get isTerminal() {
    return Deno.stderr.isTerminal();
  },
  write(text: string) {
    const b = enc.encode(text);
    for (let o = 0; o < b.length;) o += Deno.stderr.writeSync(b.subarray(o));
  },
};

export class Progress {
  private readonly enabled: boolean;
  private last = -Infinity;
  private readonly started: number;
  private drawn = false;

  constructor(
    /** What is counted, e.g. "exporting from cxenstored". */
    private readonly label: string,
    /** The total, when known (import). */
    private readonly total: number | null = null,
    private readonly out: ProgressOutput = STDERR,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.enabled = out.isTerminal;
    this.started = now();
  }

  /** Seconds since the start. */
  get seconds(): number {
    return (this.now() - this.started) / 1000;
  }

  /** `count` nodes done so far; cheap when nothing is drawn. */
  update(count: number): void {
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.last < PROGRESS_INTERVAL_MS) return;
    this.last = t;
    const rate = count / Math.max((t - this.started) / 1000, 1e-3);
    const of = this.total === null
      ? ""
      : ` of ${this.total} (${Math.floor(100 * count / Math.max(this.total, 1))}%)`;
    this.out.write(`\r\x1b[K${this.label}: ${count} nodes${of}, ${Math.round(rate)} nodes/s`);
    this.drawn = true;
  }

  /** Erase the line (before the summary). */
  done(): void {
    if (this.drawn) this.out.write("\r\x1b[K");
    this.drawn = false;
  }
}
