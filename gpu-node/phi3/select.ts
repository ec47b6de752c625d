/**
 * Partial selection over parallel arrays (ids, weights, and a byte tag per entry that travels
 * with them): the k largest, the nucleus of the largest that reach a sum, in expected linear
 * time (three-way quickselect partitions) or one heap pass for small k. No full sort.
 */

/** Segments at most this long are finished by insertion sort instead of partitioning. */
const SMALL = 16;

export function swapAt(
  ids: Int32Array,
  w: Float64Array,
  tags: Uint8Array,
  i: number,
  j: number,
): void {
  if (i === j) return;
  const id = ids[i] as number;
  ids[i] = ids[j] as number;
  ids[j] = id;
  const x = w[i] as number;
  w[i] = w[j] as number;
  w[j] = x;
  const t = tags[i] as number;
  tags[i] = tags[j] as number;
  tags[j] = t;
}

/** Sorts [from, to) by weight, largest first (ties: lower id first). */
function insertionSort(
  ids: Int32Array,
  w: Float64Array,
  tags: Uint8Array,
  from: number,
  to: number,
): void {
  for (let i = from + 1; i < to; i++) {
    for (let j = i; j > from; j--) {
      const a = w[j - 1] as number;
      const b = w[j] as number;
      if (a > b || (a === b && (ids[j - 1] as number) < (ids[j] as number))) break;
      swapAt(ids, w, tags, j - 1, j);
    }
  }
}

/** Three-way partition of [from, to) around a median-of-three pivot weight: returns [g, e]
 * with [from, g) larger, [g, e) equal and [e, to) smaller than the pivot. */
function partition(
  ids: Int32Array,
  w: Float64Array,
  tags: Uint8Array,
  from: number,
  to: number,
): [number, number] {
  const a = w[from] as number;
  const b = w[(from + to) >>> 1] as number;
  const c = w[to - 1] as number;
  const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  let g = from;
  let i = from;
  let e = to;
  while (i < e) {
    const x = w[i] as number;
    if (x > pivot) swapAt(ids, w, tags, g++, i++);
    else if (x < pivot) swapAt(ids, w, tags, i, --e);
    else i++;
  }
  return [g, e];
}

/** Moves the k largest weights of [from, to) to [from, from + k) (in no particular order). */
export function selectLargest(
  ids: Int32Array,
  w: Float64Array,
  tags: Uint8Array,
  from: number,
  to: number,
  k: number,
) {
  let lo = from;
  let hi = to;
  const target = from + k;
  while (hi - lo > SMALL) {
    const [g, e] = partition(ids, w, tags, lo, hi);
    if (target <= g) hi = g;
    else if (target <= e) return;
    else lo = e;
  }
  insertionSort(ids, w, tags, lo, hi);
}

/** Moves the k largest weights of [0, n) to [0, k) with a min-heap of k entries: one pass,
 * cheap when k is small against n. */
export function heapSelect(
  ids: Int32Array,
  w: Float64Array,
  tags: Uint8Array,
  n: number,
  k: number,
) {
  // Heapify [0, k) as a min-heap.
  const sift = (start: number) => {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= k) return;
      const right = left + 1;
      const child = right < k && (w[right] as number) < (w[left] as number) ? right : left;
      if ((w[child] as number) >= (w[i] as number)) return;
      swapAt(ids, w, tags, i, child);
      i = child;
    }
  };
  for (let i = (k >>> 1) - 1; i >= 0; i--) sift(i);
  for (let i = k; i < n; i++) {
    if ((w[i] as number) > (w[0] as number)) {
      swapAt(ids, w, tags, 0, i);
      sift(0);
    }
  }
}

/** Reorders [from, to) so that its first m entries are the fewest largest weights whose sum
 * reaches `target`; returns m (all of them if they never reach it, which rounding can cause).
 * Expected linear time: each partition keeps only the side the boundary lies in. */
export function nucleus(
  ids: Int32Array,
  w: Float64Array,
  tags: Uint8Array,
  from: number,
  to: number,
  target: number,
) {
  let lo = from;
  let hi = to;
  let need = target;
  while (hi - lo > SMALL) {
    const [g, e] = partition(ids, w, tags, lo, hi);
    let larger = 0;
    for (let i = lo; i < g; i++) larger += w[i] as number;
    if (larger >= need) {
      hi = g;
      continue;
    }
    need -= larger;
    const each = w[g] as number;
    if (each * (e - g) >= need) return Math.min(e, g + Math.ceil(need / each)) - from;
    need -= each * (e - g);
    lo = e;
  }
  insertionSort(ids, w, tags, lo, hi);
  for (let i = lo; i < hi; i++) {
    need -= w[i] as number;
    if (need <= 0) return i + 1 - from;
  }
  return to - from;
}
