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
