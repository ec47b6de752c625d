/** The review page's stylesheet, served at /review/assets/review.css (no external fonts). */
export const REVIEW_CSS = `
:root { color-scheme: light; --fg: #1a1a1a; --muted: #4a4a4a; --bg: #ffffff; --panel: #f4f5f7;
  --line: #c9ccd1; --accent: #0b57d0; --accent-fg: #ffffff; --bad: #b3261e; --good: #146c2e;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible {
  outline: 3px solid #ff9d00; outline-offset: 2px; }
.skip { position: absolute; left: -9999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 6px; z-index: 9; }
header.top { display: flex; gap: 20px; align-items: center; padding: 10px 20px; background: #1f2937; color: #fff; }
header.top a { color: #fff; text-decoration: none; font-weight: 600; }
header.top a[aria-current="page"] { text-decoration: underline; text-underline-offset: 4px; }
header.top .brand { font-weight: 700; margin-right: 12px; }
header.top form { margin-left: auto; }
header.top button { background: transparent; color: #fff; border: 1px solid #9ca3af; }
main { padding: 16px 20px 40px; max-width: 1280px; }
h1 { font-size: 1.45rem; margin: 4px 0 12px; } h2 { font-size: 1.15rem; margin: 22px 0 8px; }
button, .button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--accent-fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
input, select, textarea { font: inherit; padding: 5px 8px; border: 1px solid #6b7280; border-radius: 5px; background: #fff; color: var(--fg); }
textarea { width: 100%; min-height: 4.2em; }
label { font-weight: 600; display: block; margin-bottom: 3px; }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; background: var(--panel); padding: 10px 12px; border-radius: 8px; }
.filters label { font-size: .9rem; }
table.list { border-collapse: collapse; width: 100%; margin-top: 12px; }
table.list th, table.list td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.list th { background: var(--panel); font-size: .9rem; }
table.list td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.list tr.fresh { background: #fff7d6; }
.pager { display: flex; gap: 12px; margin-top: 12px; }
.muted { color: var(--muted); }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 18px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.panel { background: var(--panel); border-radius: 8px; padding: 10px 14px; }
.grid > div > section + section { margin-top: 14px; }
.grid > section.panel form h2 { margin-top: 6px; }
pre { white-space: pre-wrap; word-break: break-word; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px; margin: 6px 0; max-height: 22em; overflow: auto; font-size: .88rem; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
.field { margin-bottom: 10px; }
.field .hint { font-size: .85rem; color: var(--muted); margin: 2px 0 0; }
.field .error { color: var(--bad); font-weight: 600; margin: 3px 0 0; }
.field .error:empty { display: none; }
[aria-invalid="true"] { border: 2px solid var(--bad); }
.row2 { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 10px; }
fieldset.rating label { display: inline-block; font-weight: 500; margin-right: 10px; }
.notice { border-left: 5px solid var(--good); background: #e8f5ec; padding: 8px 12px; margin: 8px 0 12px; }
.problem { border-left: 5px solid var(--bad); background: #fbeaea; padding: 8px 12px; margin: 8px 0 12px; }
.feedback-item { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 8px 0; background: #fff; }
.feedback-item.stored { border: 2px solid var(--good); }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; background: #e5e7eb; font-size: .85rem; }
kbd { border: 1px solid #9ca3af; border-bottom-width: 2px; border-radius: 4px; padding: 0 4px; font-size: .85rem; background: #fff; }
.login { max-width: 420px; margin: 60px auto; }
.login input { width: 100%; }
`;
