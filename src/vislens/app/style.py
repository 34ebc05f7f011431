"""The HTML page Dash fills in, with the workbench's stylesheet.

The look is Mantine's (ui.py: dash-mantine-components, whose styles are inside its bundle,
so no page fetches anything from the network); these rules give the plain HTML parts —
annotation buttons, image grids, crops, tables of neighbours — the same colours, radii and
type scale through Mantine's CSS variables.
"""

from __future__ import annotations

CSS = """
/* Mantine (ui.py) sets the fonts, colours and sizes; these rules use its CSS variables so
   plain HTML parts look the same as its components. */
:root { --vl-line: var(--mantine-color-default-border); --vl-bg: var(--mantine-color-gray-0);
  --vl-accent: var(--mantine-primary-color-filled); --vl-muted: var(--mantine-color-dimmed); }
* { box-sizing: border-box; }
body { margin: 0; background: var(--mantine-color-gray-0); }
.vl-header { height: 52px; padding: 0 16px; background: var(--mantine-color-body);
  border-bottom: 1px solid var(--vl-line); position: sticky; top: 0; z-index: 200; }
.vl-brand { font-weight: 750; font-size: 18px; color: var(--mantine-color-indigo-7); letter-spacing: -0.01em; }
.vl-study { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 28vw; }
nav.vl-nav { display: flex; gap: 2px; align-items: center; overflow-x: auto; min-width: 0; scrollbar-width: none; }
nav.vl-nav .vl-navlink { width: auto; padding: 6px 12px; border-radius: var(--mantine-radius-md); white-space: nowrap; }
nav.vl-nav .vl-navlink .mantine-NavLink-label { font-size: var(--mantine-font-size-sm); font-weight: 500; }
main.vl-main { padding: 20px 24px 32px; max-width: 1240px; margin: 0 auto; }
main.vl-wide { max-width: none; }
h2, h3, h4 { margin: 0; }
.ann-page button { font: inherit; font-size: var(--mantine-font-size-sm); font-weight: 600; padding: 6px 14px; margin: 4px; cursor: pointer;
  border: 1px solid var(--vl-line); background: var(--mantine-color-body); color: var(--mantine-color-text);
  border-radius: var(--mantine-radius-md); min-height: 34px; }
.ann-page button:hover { background: var(--mantine-color-gray-0); border-color: var(--mantine-color-gray-5); }
.ann-page button.vl-on { background: var(--vl-accent); color: var(--mantine-color-white); border-color: var(--vl-accent); }
.ann-page button:focus-visible { outline: 2px solid var(--vl-accent); outline-offset: 1px; }
.vl-section { background: var(--mantine-color-body); }
.vl-item { padding: 12px 14px; background: var(--mantine-color-indigo-0); border-left: 3px solid var(--mantine-color-indigo-5);
  border-radius: var(--mantine-radius-sm); margin: 12px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.vl-blocked { padding: 10px 12px; background: var(--mantine-color-red-light); border-left: 3px solid var(--mantine-color-red-6);
  color: var(--mantine-color-red-9); border-radius: var(--mantine-radius-sm); }
.vl-note { overflow-wrap: anywhere; }
.vl-note:empty { display: none; }
.vl-muted { color: var(--vl-muted); font-size: var(--mantine-font-size-sm); }
.vl-controls { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: flex-end; }
.vl-controls label { display: flex; gap: 6px; align-items: center; font-size: var(--mantine-font-size-sm); }
.vl-row { display: flex; gap: 16px; align-items: stretch; }
.vl-side { flex: 1; min-width: 260px; max-width: 420px; overflow-wrap: anywhere; }
.vl-preview { width: 100%; max-height: 320px; object-fit: contain; background: var(--vl-bg);
  border: 1px solid var(--vl-line); border-radius: var(--mantine-radius-sm); }
.vl-preview:not([src]), .vl-preview[src=""] { display: none; }
.vl-field { font-size: var(--mantine-font-size-sm); display: flex; gap: 6px; min-width: 0; }
.vl-key { color: var(--vl-muted); flex: 0 0 auto; }
.vl-key::after { content: ":"; }
.vl-val { font-weight: 500; overflow-wrap: anywhere; min-width: 0; }
.vl-fields div { font-size: var(--mantine-font-size-sm); }
.vl-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; }
.vl-card { margin: 0; border: 1px solid var(--vl-line); border-radius: var(--mantine-radius-md); padding: 6px;
  background: var(--mantine-color-body); }
.vl-card img { width: 100%; aspect-ratio: 1; object-fit: cover; display: block; border-radius: var(--mantine-radius-sm); }
.vl-card figcaption { font-size: var(--mantine-font-size-xs); color: var(--vl-muted); overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; margin-top: 4px; }
table.vl-table { border-collapse: collapse; width: 100%; }
table.vl-table th { text-align: left; font-size: var(--mantine-font-size-xs); color: var(--vl-muted);
  font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; padding: 6px 10px; border-bottom: 1px solid var(--vl-line); }
table.vl-table td { border-bottom: 1px solid var(--vl-line); padding: 6px 10px; text-align: left;
  font-size: var(--mantine-font-size-sm); vertical-align: top; }
table.vl-table mark { background: var(--mantine-color-yellow-2); padding: 0 2px; border-radius: 3px; }
.vl-stat pre, .vl-stat code { font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
a { color: var(--mantine-color-anchor); }
.vl-why { white-space: pre-wrap; font-size: var(--mantine-font-size-sm); margin-top: 4px; padding: 8px 10px;
  background: var(--vl-bg); border-radius: var(--mantine-radius-sm); overflow-wrap: anywhere; }
.vl-method { font-size: var(--mantine-font-size-sm); font-weight: 650; margin: 14px 0 4px; }
.vl-pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 16px; }
.vl-top { align-items: flex-start; }
.vl-cellhead { font-weight: 600; margin: 0 0 6px; }
.vl-truth { display: inline-block; margin: 0 0 6px; padding: 3px 10px; border-radius: var(--mantine-radius-xl);
  background: var(--mantine-color-teal-light); color: var(--mantine-color-teal-9); font-size: var(--mantine-font-size-sm); font-weight: 600; }
a.vl-open, a.vl-chip { font-weight: 600; font-size: var(--mantine-font-size-sm); text-decoration: none; }
a.vl-chip { display: inline-block; padding: 2px 10px; margin: 2px 4px 2px 0; border-radius: var(--mantine-radius-xl);
  background: var(--mantine-color-indigo-0); }
a.vl-chip:hover, a.vl-open:hover { text-decoration: underline; }
a.vl-chip.vl-active { background: var(--vl-accent); color: var(--mantine-color-white); }
.ag-theme-alpine, .ag-theme-quartz { --ag-font-family: var(--mantine-font-family); --ag-font-size: 13px;
  --ag-border-radius: var(--mantine-radius-md); --ag-wrapper-border-radius: var(--mantine-radius-md); }
.vl-topbar { position: fixed; top: 52px; left: 0; right: 0; height: 3px; z-index: 300; overflow: hidden;
  background: var(--mantine-color-indigo-1); }
.vl-topbar::after { content: ""; position: absolute; top: 0; bottom: 0; width: 30%; background: var(--vl-accent);
  animation: vl-slide 1.1s ease-in-out infinite; }
@keyframes vl-slide { from { left: -30%; } to { left: 100%; } }
@media (max-width: 800px) { .vl-row { flex-direction: column; } .vl-side { max-width: none; }
  main.vl-main { padding: 12px; } .vl-study { display: none; } }
.ann-page button:disabled, .ann-page button[aria-disabled="true"] { opacity: 0.45; cursor: default; }
.ann-page button:disabled:hover, .ann-page button[aria-disabled="true"]:hover { border-color: var(--vl-line); background: var(--mantine-color-body); }
main.vl-main:has(.ann-page) { max-width: 1440px; padding-top: 14px; }
.ann-page { overflow-wrap: anywhere; min-width: 0; }
.ann-page h2 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
table.ann-tasks { background: var(--mantine-color-body); border: 1px solid var(--vl-line); border-radius: var(--mantine-radius-md); }
.ann-head { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: baseline; justify-content: space-between; }
.ann-meta { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; font-size: 14px; }
.ann-meta progress { width: 160px; accent-color: var(--vl-accent); height: 8px; }
#ann-count[data-dash-is-loading="true"]::after { content: " · saving…"; color: var(--vl-muted); }
#ann-question { font-weight: 600; margin: 6px 0; }
.ann-instructions { border: 1px solid var(--mantine-color-indigo-1); border-radius: var(--mantine-radius-md); padding: 4px 12px;
  margin: 4px 0 8px; background: var(--mantine-color-indigo-0); font-size: var(--mantine-font-size-sm); }
.ann-instructions summary { cursor: pointer; font-weight: 600; }
.ann-instructions ul { margin: 4px 0; padding-left: 20px; }
.ann-instructions p { margin: 4px 0; }
.ann-status { padding: 6px 10px; background: #fff8e6; border-left: 3px solid #e0a400; margin: 4px 0; }
.ann-status:empty { display: none; }
.ann-layout { display: grid; grid-template-columns: minmax(0, 1fr) 250px; gap: 16px; align-items: start; }
.ann-main { min-width: 0; background: var(--mantine-color-body); border: 1px solid var(--vl-line);
  border-radius: var(--mantine-radius-md); padding: 10px 14px; }
.ann-main:empty { display: none; }
.ann-side { background: var(--mantine-color-body); border: 1px solid var(--vl-line); border-radius: var(--mantine-radius-md);
  padding: 8px 10px; min-width: 0; }
.ann-side summary { cursor: pointer; font-weight: 600; }
.ann-side p { margin: 4px 0; }
.ann-items { max-height: calc(100vh - 230px); overflow-y: auto; }
#ann-jump label { display: block; position: relative; padding: 0; margin: 1px 0; cursor: pointer; }
#ann-jump label > span:first-child { position: absolute; opacity: 0; width: 1px; height: 1px; overflow: hidden; }
.ann-jump-radio { margin: 0; }
.ann-jump-label { display: block; min-width: 0; }
.ann-jump { display: block; padding: 2px 8px; font-size: 13px; border: 1px solid transparent; border-radius: 6px; overflow-wrap: anywhere; }
#ann-jump label:hover .ann-jump { border-color: var(--vl-line); }
#ann-jump label:has(:focus-visible) .ann-jump { outline: 2px solid var(--vl-accent); }
.ann-jump.ann-here { border-color: var(--vl-accent); background: #eef2fc; font-weight: 600; }
.ann-st-done { color: #1d7a47; }
.ann-st-skipped { color: #a05a00; }
.ann-st-started { color: var(--vl-accent); }
.ann-st-pending { color: var(--vl-muted); }
.ann-itemhead { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; margin: 2px 0 6px; }
#ann-item-no { font-weight: 600; }
.ann-badge { font-size: 12px; border: 1px solid currentColor; border-radius: 10px; padding: 0 8px; }
.ann-bar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 6px 0; }
.ann-bar button { margin: 0; }
.ann-text { white-space: pre-wrap; overflow-wrap: anywhere; }
.vl-item.ann-text { max-height: 40vh; overflow-y: auto; margin: 6px 0; }
#ann-current { margin: 4px 0; min-height: 1em; color: var(--vl-muted); font-size: 14px; }
.ann-patch { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start; }
.ann-figs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.ann-fig { margin: 0; }
.ann-fig figcaption { font-size: 12px; color: var(--vl-muted); margin-top: 2px; max-width: 300px; }
.ann-full { position: relative; width: 300px; max-width: 100%; }
.ann-full-img { width: 100%; display: block; }
.ann-answers { flex: 1 1 380px; min-width: 0; }
table.ann-candidates { border-collapse: collapse; width: 100%; }
table.ann-candidates td { border-bottom: 1px solid var(--vl-line); padding: 4px 6px; vertical-align: top; }
.ann-wordcell { min-width: 8em; }
.ann-word { font-weight: 600; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.ann-clamp { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.ann-more summary { cursor: pointer; list-style: none; }
.ann-more summary::-webkit-details-marker { display: none; }
.ann-toggle { color: var(--vl-accent); font-size: 12px; }
.ann-more[open] .ann-clamp, .ann-more[open] .ann-show, .ann-more:not([open]) .ann-less { display: none; }
.ann-sentence { color: var(--vl-muted); font-size: 13px; }
.ann-relcell { white-space: nowrap; }
.ann-relcell button { margin: 2px; padding: 4px 8px; font-size: 14px; }
.ann-q { flex: 0 0 13em; }
.ann-thumbs { display: flex; flex-wrap: wrap; gap: 6px; }
.ann-thumbbox { position: relative; }
.ann-thumb { width: 150px; max-width: 100%; display: block; }
.ann-thumb.ann-heat { position: absolute; left: 0; top: 0; opacity: 0.5; }
.ann-commentbox { margin-top: 8px; }
.ann-comment { width: 100%; min-height: 44px; font: inherit; font-size: 14px; padding: 6px; border: 1px solid var(--vl-line); border-radius: 6px; }
#ann-done { padding: 12px; border: 1px solid var(--vl-line); border-radius: 8px; background: var(--vl-bg); }
#ann-done h3 { margin: 0 0 6px; }
table.ann-tasks { max-width: 100%; }
@media (max-width: 800px) {
  .ann-layout { grid-template-columns: minmax(0, 1fr); }
  .ann-main { padding: 8px 10px; }
  .ann-items { max-height: 40vh; }
  .ann-relcell { white-space: normal; }
  table.ann-candidates, table.ann-candidates tbody, table.ann-candidates tr, table.ann-candidates td { display: block; width: 100%; }
  .ann-meta progress { width: 100px; }
}
"""


def index_html(script: str = "") -> str:
    """Dash's index template with the stylesheet and an optional inline script."""
    tail = f"<script>{script}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n<html>\n  <head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}\n"
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"  <style>{CSS}</style></head>\n"
        "  <body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer>\n"
        f"  {tail}</body>\n</html>"
    )
