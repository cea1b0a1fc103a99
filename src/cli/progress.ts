import cliProgress from 'cli-progress';

/** A progress bar on stderr, shown only to a person at a terminal (never with --json). */
export class Progress {
  readonly #bar: cliProgress.SingleBar | undefined;
  #started = false;

  constructor(json: boolean, label: string) {
    this.#bar =
      json || !process.stderr.isTTY
        ? undefined
        : new cliProgress.SingleBar(
            {
              format: `${label} [{bar}] {percentage}% {value}/{total} records, {eta_formatted} left`,
              stream: process.stderr,
            },
            cliProgress.Presets.shades_classic,
          );
  }

  /** What to report progress to: nothing when no bar is shown (no listing is made to size it). */
  get listener(): ((done: number, total: number) => void) | undefined {
    return this.#bar === undefined ? undefined : (done, total) => this.update(done, total);
  }

  /** `total` > 0 starts the bar; later calls move it. */
  update(done: number, total: number): void {
    if (this.#bar === undefined) return;
    if (!this.#started && total > 0) {
      this.#bar.start(total, done);
      this.#started = true;
    } else if (this.#started) this.#bar.update(done);
  }

  stop(): void {
    if (this.#started) this.#bar?.stop();
  }
}
