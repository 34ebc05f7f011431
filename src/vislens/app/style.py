"""The workbench's one look: the HTML page Dash fills in, with the shared stylesheet.

Hand-written CSS rather than a component library's theme: the theme packages load their
stylesheets from a CDN, and the workbench must work on a machine without network.
"""

from __future__ import annotations

CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde1e8; --accent: #3a62c9; --bg: #f6f7fa; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--ink); background: #fff; }
nav.vl-nav { background: #1f2740; padding: 10px 16px; display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: center; }
nav.vl-nav a { color: #e8ecf6; text-decoration: none; font-size: 15px; }
nav.vl-nav a:hover { text-decoration: underline; }
main.vl-main { padding: 16px; max-width: 1100px; }
main.vl-wide { max-width: none; }
h2 { margin: 4px 0 12px; font-weight: 600; }
h4 { margin: 8px 0 6px; font-weight: 600; font-size: 15px; }
button { font-size: 15px; padding: 6px 12px; margin: 4px; cursor: pointer; border: 1px solid var(--line); background: #fff; border-radius: 6px; }
button:hover { border-color: var(--accent); }
button.vl-on { background: #2a7; color: #fff; border-color: #2a7; }
.vl-item { padding: 12px; background: #f6f8ff; border-left: 3px solid #4a90e2; margin: 12px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.vl-blocked { padding: 10px; background: #fff0f0; border-left: 3px solid #c33; color: #900; }
.vl-note { padding: 8px 12px; background: #fff8e6; border-left: 3px solid #e0a400; margin: 6px 0; overflow-wrap: anywhere; }
.vl-note:empty { display: none; }
.vl-muted { color: var(--muted); font-size: 14px; }
.vl-controls { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: center; margin-bottom: 8px; }
.vl-controls label { display: flex; gap: 6px; align-items: center; font-size: 14px; }
.vl-row { display: flex; gap: 12px; align-items: stretch; }
.vl-side { flex: 1; min-width: 260px; max-width: 420px; border-left: 1px solid var(--line); padding: 0 12px; overflow-wrap: anywhere; }
.vl-preview { width: 100%; max-height: 320px; object-fit: contain; background: var(--bg); border: 1px solid var(--line); }
.vl-fields div { margin: 3px 0; font-size: 14px; }
.vl-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 8px; margin: 8px 0; }
.vl-card { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 4px; background: var(--bg); }
.vl-card img { width: 100%; aspect-ratio: 1; object-fit: cover; display: block; }
.vl-card figcaption { font-size: 12px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table.vl-table { border-collapse: collapse; margin: 8px 0; }
table.vl-table th, table.vl-table td { border-bottom: 1px solid var(--line); padding: 6px 10px; text-align: left; font-size: 14px; }
.vl-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px; }
.vl-stat { border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
.vl-stat > * { display: block; margin: 3px 0; overflow-wrap: anywhere; }
.vl-stat b { font-size: 18px; }
@media (max-width: 800px) { .vl-row { flex-direction: column; } .vl-side { max-width: none; border-left: 0; padding: 0; } }
button:disabled, button[aria-disabled="true"] { opacity: 0.45; cursor: default; }
button:disabled:hover, button[aria-disabled="true"]:hover { border-color: var(--line); }
main.vl-main:has(.ann-page) { max-width: 1400px; }
.ann-page { overflow-wrap: anywhere; min-width: 0; }
.ann-page h2 { font-size: 22px; margin: 0 0 4px; }
.ann-head { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: baseline; justify-content: space-between; }
.ann-meta { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; font-size: 14px; }
.ann-meta progress { width: 160px; }
#ann-count[data-dash-is-loading="true"]::after { content: " · saving…"; color: var(--muted); }
#ann-question { font-weight: 600; margin: 6px 0; }
.ann-instructions { border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; margin: 4px 0 8px; background: var(--bg); font-size: 14px; }
.ann-instructions summary { cursor: pointer; font-weight: 600; }
.ann-instructions ul { margin: 4px 0; padding-left: 20px; }
.ann-instructions p { margin: 4px 0; }
.ann-status { padding: 6px 10px; background: #fff8e6; border-left: 3px solid #e0a400; margin: 4px 0; }
.ann-status:empty { display: none; }
.ann-layout { display: grid; grid-template-columns: minmax(0, 1fr) 250px; gap: 16px; align-items: start; }
.ann-main { min-width: 0; }
.ann-side { border-left: 1px solid var(--line); padding-left: 12px; min-width: 0; }
.ann-side summary { cursor: pointer; font-weight: 600; }
.ann-side p { margin: 4px 0; }
.ann-items { max-height: calc(100vh - 230px); overflow-y: auto; }
#ann-jump label { display: block; position: relative; padding: 0; margin: 1px 0; cursor: pointer; }
#ann-jump label > span:first-child { position: absolute; opacity: 0; width: 1px; height: 1px; overflow: hidden; }
.ann-jump-radio { margin: 0; }
.ann-jump-label { display: block; min-width: 0; }
.ann-jump { display: block; padding: 2px 8px; font-size: 13px; border: 1px solid transparent; border-radius: 6px; overflow-wrap: anywhere; }
#ann-jump label:hover .ann-jump { border-color: var(--line); }
#ann-jump label:has(:focus-visible) .ann-jump { outline: 2px solid var(--accent); }
.ann-jump.ann-here { border-color: var(--accent); background: #eef2fc; font-weight: 600; }
.ann-st-done { color: #1d7a47; }
.ann-st-skipped { color: #a05a00; }
.ann-st-started { color: var(--accent); }
.ann-st-pending { color: var(--muted); }
.ann-itemhead { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; margin: 2px 0 6px; }
#ann-item-no { font-weight: 600; }
.ann-badge { font-size: 12px; border: 1px solid currentColor; border-radius: 10px; padding: 0 8px; }
.ann-bar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 6px 0; }
.ann-bar button { margin: 0; }
.ann-text { white-space: pre-wrap; overflow-wrap: anywhere; }
.vl-item.ann-text { max-height: 40vh; overflow-y: auto; margin: 6px 0; }
#ann-current { margin: 4px 0; min-height: 1em; color: var(--muted); font-size: 14px; }
.ann-patch { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start; }
.ann-figs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.ann-fig { margin: 0; }
.ann-fig figcaption { font-size: 12px; color: var(--muted); margin-top: 2px; max-width: 300px; }
.ann-full { position: relative; width: 300px; max-width: 100%; }
.ann-full-img { width: 100%; display: block; }
.ann-answers { flex: 1 1 380px; min-width: 0; }
table.ann-candidates { border-collapse: collapse; width: 100%; }
table.ann-candidates td { border-bottom: 1px solid var(--line); padding: 4px 6px; vertical-align: top; }
.ann-wordcell { min-width: 8em; }
.ann-word { font-weight: 600; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.ann-clamp { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.ann-more summary { cursor: pointer; list-style: none; }
.ann-more summary::-webkit-details-marker { display: none; }
.ann-toggle { color: var(--accent); font-size: 12px; }
.ann-more[open] .ann-clamp, .ann-more[open] .ann-show, .ann-more:not([open]) .ann-less { display: none; }
.ann-sentence { color: var(--muted); font-size: 13px; }
.ann-relcell { white-space: nowrap; }
.ann-relcell button { margin: 2px; padding: 4px 8px; font-size: 14px; }
.ann-q { flex: 0 0 13em; }
.ann-thumbs { display: flex; flex-wrap: wrap; gap: 6px; }
.ann-thumbbox { position: relative; }
.ann-thumb { width: 150px; max-width: 100%; display: block; }
.ann-thumb.ann-heat { position: absolute; left: 0; top: 0; opacity: 0.5; }
.ann-commentbox { margin-top: 8px; }
.ann-comment { width: 100%; min-height: 44px; font: inherit; font-size: 14px; padding: 6px; border: 1px solid var(--line); border-radius: 6px; }
#ann-done { padding: 12px; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); }
#ann-done h3 { margin: 0 0 6px; }
table.ann-tasks { max-width: 100%; }
@media (max-width: 800px) {
  .ann-layout { grid-template-columns: minmax(0, 1fr); }
  .ann-side { border-left: 0; padding-left: 0; border-top: 1px solid var(--line); padding-top: 8px; }
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
