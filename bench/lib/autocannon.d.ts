// autocannon 9 ships no types; this declares the part the benchmarks use (its documented API).
declare module "autocannon" {
  namespace autocannon {
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p90: number;
      p97_5: number;
      p99: number;
    }
    interface Options {
      url: string;
      method?: string;
      connections?: number;
      duration?: number;
      amount?: number;
      headers?: Record<string, string>;
      body?: string;
      /** Requests per second from all connections (open loop, corrected for coordinated omission). */
      overallRate?: number;
    }
    interface Result {
      latency: Histogram;
      requests: Histogram;
      throughput: Histogram;
      errors: number;
      timeouts: number;
      non2xx: number;
      duration: number;
    }
  }
  function autocannon(options: autocannon.Options): Promise<autocannon.Result>;
  export default autocannon;
}
