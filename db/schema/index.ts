export * from "./feedback.ts";
export * from "./proposals.ts";
