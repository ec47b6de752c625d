/**
 * What the service knows about its two models: state, load progress, why loading failed, and,
 * once ready, the runtime and its gate (the scheduler). main.ts (through loader.ts) moves the states; the
 * HTTP app only reads them, so it never loads anything itself.
 */
import { basename } from "node:path";
import type { ModelHealth, ModelState } from "../contract/index.ts";
import type { HermesRuntime, LoadProgress, Phi3Runtime } from "../runtime.ts";
import { ModelGate } from "../scheduler/gate.ts";

export type ModelKey = "hermes" | "phi3";

/** What every model runtime has in common. */
export interface RuntimeBase {
  readonly modelName: string;
  readonly device: { kind: "cuda" | "cpu"; name?: string };
  /** Generations it runs at once (batched by the runtime); the gate admits this many. */
  readonly parallel: number;
  dispose(): Promise<void>;
}

export interface SlotOptions {
  key: ModelKey;
  /** File or folder; null = disabled by its setting. */
  path: string | null;
  /** The setting that names the path, for messages. */
  pathVariable: string;
  queueMax: number;
  now?: () => number;
}

export class ModelSlot<R extends RuntimeBase> {
  readonly key: ModelKey;
  readonly path: string | null;
  readonly pathVariable: string;
  readonly #queueMax: number;
  readonly #now: (() => number) | undefined;
  #state: ModelState;
  #progress: LoadProgress | undefined;
  #error: string | undefined;
  #fileExists = false;
  #runtime: R | undefined;
  #gate: ModelGate | undefined;

  constructor(options: SlotOptions) {
    this.key = options.key;
    this.path = options.path;
    this.pathVariable = options.pathVariable;
    this.#queueMax = options.queueMax;
    this.#now = options.now;
    this.#state = options.path === null ? "disabled" : "loading";
  }

  get state(): ModelState {
    return this.#state;
  }

  get error(): string | undefined {
    return this.#error;
  }

  get progress(): LoadProgress | undefined {
    return this.#progress;
  }

  get fileExists(): boolean {
    return this.#fileExists;
  }

  setFileExists(exists: boolean): void {
    this.#fileExists = exists;
  }

  markLoading(progress: LoadProgress): void {
    if (this.#state !== "loading") return;
    this.#progress = {
      fraction: Math.min(1, Math.max(0, progress.fraction)),
      phase: progress.phase,
    };
  }

  markMissing(reason: string): void {
    this.#fileExists = false;
    this.#settle("missing", reason);
  }

  markError(reason: string): void {
    this.#settle("error", reason);
  }

  markReady(runtime: R): void {
    this.#runtime = runtime;
    this.#gate = new ModelGate({
      parallel: Math.max(1, runtime.parallel),
      maxWaiting: this.#queueMax,
      ...(this.#now ? { now: this.#now } : {}),
    });
    this.#settle("ready", undefined);
  }

  /** The runtime and its gate when ready. */
  ready(): { runtime: R; gate: ModelGate } | undefined {
    if (this.#state !== "ready" || !this.#runtime || !this.#gate) return undefined;
    return { runtime: this.#runtime, gate: this.#gate };
  }

  /** Why the model cannot serve right now, for the 503 body. */
  unavailableReason(): string {
    switch (this.#state) {
      case "loading": {
        const p = this.#progress;
        return p ? `still loading (${Math.round(p.fraction * 100)}%, ${p.phase})` : "still loading";
      }
      case "disabled":
        return `disabled by ${this.pathVariable}=off`;
      case "ready":
        return "ready";
      default:
        return this.#error ?? this.#state;
    }
  }

  health(): ModelHealth {
    const runtime = this.#state === "ready" ? this.#runtime : undefined;
    const name = runtime?.modelName ?? (this.path ? basename(this.path) : undefined);
    return {
      state: this.#state,
      loaded: this.#state === "ready",
      path: this.path ?? "off",
      ...(name ? { name } : {}),
      file_exists: this.#fileExists,
      ...(this.#state === "loading" ? { progress: this.#progress?.fraction ?? 0 } : {}),
      ...(this.#state === "error" || this.#state === "missing"
        ? { error: this.#error ?? "unknown error" }
        : {}),
      ...(this.#gate && this.#state === "ready" ? { queue: this.#gate.stats() } : {}),
    };
  }

  /** Waits until the model's gate has nothing running or waiting. */
  async idle(): Promise<void> {
    await this.#gate?.onIdle();
  }

  /** Frees the runtime; the slot is no longer usable afterwards. */
  async dispose(): Promise<void> {
    const runtime = this.#runtime;
    this.#runtime = undefined;
    if (this.#state === "ready" || this.#state === "loading") this.#settle("error", "shut down");
    await runtime?.dispose();
  }

  #settle(state: ModelState, error: string | undefined) {
    this.#state = state;
    this.#error = error;
    this.#progress = undefined;
  }
}

export interface ModelRegistry {
  hermes: ModelSlot<HermesRuntime>;
  phi3: ModelSlot<Phi3Runtime>;
}

export interface RegistryOptions {
  hermesPath: string | null;
  phi3Path: string | null;
  hermesQueueMax: number;
  phi3QueueMax: number;
  now?: () => number;
}

export function createModelRegistry(options: RegistryOptions): ModelRegistry {
  const now = options.now ? { now: options.now } : {};
  return {
    hermes: new ModelSlot<HermesRuntime>({
      key: "hermes",
      path: options.hermesPath,
      pathVariable: "HERMES_MODEL_PATH",
      queueMax: options.hermesQueueMax,
      ...now,
    }),
    phi3: new ModelSlot<Phi3Runtime>({
      key: "phi3",
      path: options.phi3Path,
      pathVariable: "PHI3_MODEL_DIR",
      queueMax: options.phi3QueueMax,
      ...now,
    }),
  };
}
