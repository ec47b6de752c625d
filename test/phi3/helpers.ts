/** Shared pieces of the Phi-3 tests: a tiny model folder per test file and an ajv validator. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../../gpu-node/contract/index.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";

export interface TinyFolder {
  dir: string;
  remove(): Promise<void>;
}

export async function makeTinyFolder(seed = 7): Promise<TinyFolder> {
  const root = await mkdtemp(join(tmpdir(), "tiny-phi3-"));
  const dir = join(root, "model");
  await writeTinyPhi3(dir, { seed });
  return { dir, remove: () => rm(root, { recursive: true, force: true }) };
}

/** An independent check of the contract's schema (not our grammar, not zod). */
export function tradeSchemaValidator(): (value: unknown) => boolean {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
  const validate = ajv.compile(structuredClone(TRADE_PROPOSAL_JSON_SCHEMA) as object);
  return (value) => validate(value) === true;
}
