// Progress display: a redrawn bar on a TTY, plain lines otherwise (CI logs, pipes).

export class Progress {
  private readonly tty: boolean;
  private lastPlain = 0;
  private t0 = performance.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY) && process.env.CI !== 'true';
  }

  update(done: number, info = ''): void {
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const elapsed = (performance.now() - this.t0) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : 0;
    if (this.tty) {
      const width = 24;
      const fill = Math.round(frac * width);
      const bar = '#'.repeat(fill) + '-'.repeat(width - fill);
      this.stream.write(`\r${this.label} [${bar}] ${done}/${this.total} ${info} ${elapsed.toFixed(0)}s eta ${eta.toFixed(0)}s\x1b[K`);
    } else {
      // Plain lines at most every 5 seconds (and at the end).
      const now = performance.now();
      if (done >= this.total || now - this.lastPlain > 5000) {
        this.lastPlain = now;
        this.stream.write(`${this.label}: ${done}/${this.total} ${info} (${elapsed.toFixed(0)}s, eta ${eta.toFixed(0)}s)\n`);
      }
    }
  }

  done(info = ''): void {
    if (this.tty) this.stream.write(`\r${this.label}: done ${info} in ${((performance.now() - this.t0) / 1000).toFixed(1)}s\x1b[K\n`);
    else this.stream.write(`${this.label}: done ${info} in ${((performance.now() - this.t0) / 1000).toFixed(1)}s\n`);
  }
}
