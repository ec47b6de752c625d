/**
 * Stop sequences over a stream of text pieces: passes text on as soon as it cannot be the start of
 * a stop sequence, holds back the rest, and ends at the first stop sequence (which is not part of
 * the text). Pure; the generation loop feeds it detokenized pieces.
 */
export class StopFilter {
  readonly #stops: readonly string[];
  #held = "";
  #stopped = false;

  constructor(stops: readonly string[] = []) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** Whether a stop sequence was produced (nothing after it is text). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Takes the next piece; returns the text that is certain to be output (maybe ""). */
  push(piece: string): string {
    if (this.#stopped) return "";
    if (this.#stops.length === 0) return piece;
    const buffer = this.#held + piece;
    let cut = -1;
    for (const stop of this.#stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.#stopped = true;
      this.#held = "";
      return buffer.slice(0, cut);
    }
    // Hold back the longest tail that could still grow into a stop sequence.
    let hold = 0;
    for (const stop of this.#stops) {
      for (let n = Math.min(stop.length - 1, buffer.length); n > hold; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    this.#held = buffer.slice(buffer.length - hold);
    return buffer.slice(0, buffer.length - hold);
  }

  /** The generation ended without a stop sequence: what was held back is text after all. */
  flush(): string {
    const rest = this.#stopped ? "" : this.#held;
    this.#held = "";
    return rest;
  }
}
