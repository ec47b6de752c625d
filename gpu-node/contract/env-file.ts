/**
 * `.env` loading for the Node entries and CLIs (never imported by the Worker: Workers have no
 * files). It imports nothing: Node (20.12+) parses the file itself, and a variable already set
 * in the environment wins over the file.
 */

/** Loads `path` (default ./.env) into process.env when it exists; returns whether it did. */
export function loadEnvFile(path = ".env"): boolean {
  if (typeof process.loadEnvFile !== "function") return false;
  try {
    process.loadEnvFile(path);
    return true;
  } catch (err) {
    // No file: the environment and the defaults decide.
    if ((err as { code?: string }).code === "ENOENT") return false;
    throw err;
  }
}
