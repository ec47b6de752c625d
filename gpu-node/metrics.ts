/**
 * The GPU node's Prometheus metrics, per model: tokens, time to first token, time per output
 * token, queue and sequences, load state, errors by code, VRAM. One Registry per node (no global).
 *
 * Counters and histograms are fed by the scheduler as generations finish; gauges are read from
 * `sources` at scrape time, so they can never drift from the scheduler's own state.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ErrorCode, ModelState } from "./contract/index.ts";

export type MetricsModel = "hermes" | "phi3";
const MODELS: readonly MetricsModel[] = ["hermes", "phi3"];
const STATES: readonly ModelState[] = ["loading", "ready", "error", "missing", "disabled"];

export interface GpuNodeMetricsSources {
  queue(model: MetricsModel): { running: number; waiting: number } | undefined;
  state(model: MetricsModel): ModelState;
  /** Sequences decoding right now (a batch's size). */
  activeSequences?(model: MetricsModel): number;
  vram?(): Promise<{ usedMiB: number; totalMiB: number } | undefined>;
}

export interface FinishedGeneration {
  promptTokens: number;
  completionTokens: number;
  /** From the request's start on the model to its first generated token, seconds. */
  timeToFirstTokenS?: number;
  /** Decode time after the first token, seconds (divided by the tokens after the first). */
  decodeS?: number;
}

const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TPOT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64];

export class GpuNodeMetrics {
  readonly registry = new Registry();
  readonly #promptTokens: Counter<"model">;
  readonly #generatedTokens: Counter<"model">;
  readonly #requests: Counter<"model" | "finish">;
  readonly #ttft: Histogram<"model">;
  readonly #tpot: Histogram<"model">;
  readonly #errors: Counter<"model" | "code">;

  constructor(sources: GpuNodeMetricsSources, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const labelNames = ["model"] as const;
    this.#promptTokens = new Counter({
      name: "sidecar_gpu_prompt_tokens_total",
      help: "Prompt tokens processed (prefill), per model.",
      labelNames,
      registers,
    });
    this.#generatedTokens = new Counter({
      name: "sidecar_gpu_generated_tokens_total",
      help: "Tokens generated, per model.",
      labelNames,
      registers,
    });
    this.#requests = new Counter({
      name: "sidecar_gpu_requests_total",
      help: "Generations finished, per model and finish reason (stop, length, aborted).",
      labelNames: ["model", "finish"],
      registers,
    });
    this.#ttft = new Histogram({
      name: "sidecar_gpu_time_to_first_token_seconds",
      help: "From a generation's start on the model (after the queue) to its first token.",
      labelNames,
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.#tpot = new Histogram({
      name: "sidecar_gpu_time_per_output_token_seconds",
      help: "Mean decode time per token after the first, per generation.",
      labelNames,
      buckets: TPOT_BUCKETS,
      registers,
    });
    this.#errors = new Counter({
      name: "sidecar_gpu_errors_total",
      help: "Requests answered with an error, per model and error code.",
      labelNames: ["model", "code"],
      registers,
    });
    new Gauge({
      name: "sidecar_gpu_queue_waiting",
      help: "Requests waiting for the model, per model.",
      labelNames,
      registers,
      collect() {
        for (const model of MODELS) this.set({ model }, sources.queue(model)?.waiting ?? 0);
      },
    });
    new Gauge({
      name: "sidecar_gpu_queue_running",
      help: "Requests running on the model, per model.",
      labelNames,
      registers,
      collect() {
        for (const model of MODELS) this.set({ model }, sources.queue(model)?.running ?? 0);
      },
    });
    new Gauge({
      name: "sidecar_gpu_active_sequences",
      help: "Sequences decoding right now (the batch), per model.",
      labelNames,
      registers,
      collect() {
        for (const model of MODELS) {
          this.set(
            { model },
            sources.activeSequences?.(model) ?? sources.queue(model)?.running ?? 0,
          );
        }
      },
    });
    new Gauge({
      name: "sidecar_gpu_model_state",
      help: "1 for the model's current load state, 0 for the others.",
      labelNames: ["model", "state"],
      registers,
      collect() {
        for (const model of MODELS) {
          const now = sources.state(model);
          for (const state of STATES) this.set({ model, state }, state === now ? 1 : 0);
        }
      },
    });
    const vram = sources.vram;
    if (vram) {
      const reading = () => vram().catch(() => undefined);
      new Gauge({
        name: "sidecar_gpu_vram_used_mib",
        help: "GPU memory in use as the model runtime reads it, MiB (absent on CPU).",
        registers,
        async collect() {
          const r = await reading();
          if (r) this.set(r.usedMiB);
        },
      });
      new Gauge({
        name: "sidecar_gpu_vram_total_mib",
        help: "GPU memory in total as the model runtime reads it, MiB (absent on CPU).",
        registers,
        async collect() {
          const r = await reading();
          if (r) this.set(r.totalMiB);
        },
      });
    }
    for (const model of MODELS) {
      this.#promptTokens.inc({ model }, 0);
      this.#generatedTokens.inc({ model }, 0);
    }
  }

  finished(model: MetricsModel, g: FinishedGeneration, finish: string): void {
    this.#promptTokens.inc({ model }, g.promptTokens);
    this.#generatedTokens.inc({ model }, g.completionTokens);
    this.#requests.inc({ model, finish });
    if (g.timeToFirstTokenS !== undefined) this.#ttft.observe({ model }, g.timeToFirstTokenS);
    if (g.decodeS !== undefined && g.completionTokens > 1) {
      this.#tpot.observe({ model }, g.decodeS / (g.completionTokens - 1));
    }
  }

  error(model: MetricsModel, code: ErrorCode): void {
    this.#errors.inc({ model, code });
  }
}
