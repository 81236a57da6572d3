/**
 * Progress reporting from an engine to the job row, throttled: a write when
 * the stage name changes, otherwise at most one every `intervalMs` (the last
 * value is never lost). A write that finds the job no longer ours (canceled,
 * or retried elsewhere) fires `onLost`.
 */
export interface ProgressSink {
  write(progress: number, stage: string): Promise<boolean>;
  onLost(): void;
}

export class ThrottledProgress {
  readonly #sink: ProgressSink;
  readonly #intervalMs: number;
  #lastWrite = 0;
  #lastStage: string | undefined;
  #pending: { progress: number; stage: string } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(sink: ProgressSink, intervalMs = 250) {
    this.#sink = sink;
    this.#intervalMs = intervalMs;
  }

  report(progress: number, stage: string): void {
    if (this.#stopped) return;
    this.#pending = { progress, stage };
    const due = this.#lastWrite + this.#intervalMs - Date.now();
    if (stage !== this.#lastStage || due <= 0) {
      this.#flush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), due);
    }
  }

  /** Stop writing and wait for writes in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#chain;
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.#pending;
    if (!next) return;
    this.#pending = undefined;
    this.#lastWrite = Date.now();
    this.#lastStage = next.stage;
    this.#chain = this.#chain.then(async () => {
      if (this.#stopped) return;
      const ours = await this.#sink.write(next.progress, next.stage).catch(() => true);
      if (!ours) this.#sink.onLost();
    });
  }
}
