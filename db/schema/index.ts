export * from "./feedback.ts";
export * from "./generations.ts";
export * from "./proposals.ts";
