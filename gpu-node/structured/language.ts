/**
 * A tiny regular-language toolkit: one description of the output language, printed as EBNF for
 * xgrammar (which masks the logits) and compiled into a byte-level NFA of our own (which plans
 * the token budget: the shortest way to finish from wherever the output is).
 *
 * Why our own automaton next to xgrammar: xgrammar answers "which tokens may come next" very
 * fast, but not "how far is the end". The trade object's language is regular (one flat object of
 * strings, enums and numbers), so a small NFA gives exact shortest completions. Both views come
 * from the same AST, so they describe the same language.
 *
 * This file is the AST and its constructors; ebnf.ts prints it, byte-nfa.ts compiles it.
 */

export type Lang =
  | { readonly kind: "lit"; readonly text: string }
  /** One byte in the given inclusive ranges; printed as an EBNF class (ASCII only). */
  | { readonly kind: "bytes"; readonly ranges: readonly (readonly [number, number])[] }
  /** One Unicode character: `ebnf` is the code-point class for xgrammar, `bytes` its UTF-8. */
  | { readonly kind: "char"; readonly ebnf: string; readonly bytes: Lang }
  | { readonly kind: "seq"; readonly items: readonly Lang[] }
  | { readonly kind: "alt"; readonly items: readonly Lang[] }
  | { readonly kind: "rep"; readonly item: Lang; readonly min: number; readonly max: number }
  /** A named EBNF rule; the NFA inlines it. */
  | { readonly kind: "rule"; readonly name: string; readonly body: Lang }
  /**
   * `(items[0] | items[1] | …)* end`, printed as the right-recursive rule
   * `name ::= end | items[0] name | items[1] name | …`; the NFA builds it as that star.
   */
  | {
      readonly kind: "loop";
      readonly name: string;
      readonly items: readonly Lang[];
      readonly end: Lang;
    }
  /**
   * `(items[0] | items[1] | …) next`, or `end` when given, printed as the rule
   * `name ::= end | items[0] next | items[1] next | …`: the right-recursive shape xgrammar masks
   * fast (the same as `loop`, but moving on to another rule). The automaton builds `next` once.
   */
  | {
      readonly kind: "step";
      readonly name: string;
      readonly items: readonly Lang[];
      readonly next: Lang;
      readonly end: Lang | undefined;
    };

export const lit = (text: string): Lang => ({ kind: "lit", text });
export const bytes = (...ranges: (readonly [number, number])[]): Lang => ({
  kind: "bytes",
  ranges,
});
export const seq = (...items: Lang[]): Lang => ({ kind: "seq", items });
export const alt = (...items: Lang[]): Lang => ({ kind: "alt", items });
export const opt = (item: Lang): Lang => ({ kind: "rep", item, min: 0, max: 1 });
export const star = (item: Lang): Lang => ({ kind: "rep", item, min: 0, max: Infinity });
export const rep = (item: Lang, min: number, max: number): Lang => ({
  kind: "rep",
  item,
  min,
  max,
});
export const rule = (name: string, body: Lang): Lang => ({ kind: "rule", name, body });
/**
 * Any number of `items`, then `end`, as one right-recursive rule. Why not `star`: xgrammar masks
 * a starred alternation inside a rule slowly at a real vocabulary size (40-60 ms per mask inside
 * a JSON string at 32,064 tokens, bench/constrained.ts), and the right-recursive form of the same
 * language, the one xgrammar's own JSON grammar uses for strings, in about 0.1 ms.
 */
export const loop = (name: string, items: Lang[], end: Lang): Lang => ({
  kind: "loop",
  name,
  items,
  end,
});

/** One of `items` then `next`, or `end`, as one right-recursive rule (see the `step` node). */
export const step = (name: string, items: Lang[], next: Lang, end?: Lang): Lang => ({
  kind: "step",
  name,
  items,
  next,
  end,
});

/** Well-formed UTF-8 of a non-ASCII code point (Unicode Table 3-7). */
const UTF8_MULTIBYTE: Lang = alt(
  seq(bytes([0xc2, 0xdf]), bytes([0x80, 0xbf])),
  seq(bytes([0xe0, 0xe0]), bytes([0xa0, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xe1, 0xec]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xed, 0xed]), bytes([0x80, 0x9f]), bytes([0x80, 0xbf])),
  seq(bytes([0xee, 0xef]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xf0, 0xf0]), bytes([0x90, 0xbf]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xf1, 0xf3]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
  seq(bytes([0xf4, 0xf4]), bytes([0x80, 0x8f]), bytes([0x80, 0xbf]), bytes([0x80, 0xbf])),
);

/** A character allowed unescaped inside a JSON string: anything but `"`, `\` and U+0000..U+001F. */
export const JSON_STRING_CHAR: Lang = {
  kind: "char",
  ebnf: '[^"\\\\\\u0000-\\u001f]',
  bytes: alt(bytes([0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7f]), UTF8_MULTIBYTE),
};
