"""The offline report's stylesheet: plain CSS, readable on screen and printed (`core.results.report`)."""

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f3f6fb; color: #111827;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 24px; }
header, section { background: #fff; border: 1px solid #e5e7eb; border-radius: 10px; padding: 20px 24px;
  margin-bottom: 16px; }
h1 { margin: 4px 0 8px; font-size: 28px; } h2 { margin-top: 0; font-size: 20px; } h3 { font-size: 16px; }
.kicker { margin: 0; color: #2563eb; font-weight: 600; text-transform: uppercase; font-size: 12px;
  letter-spacing: .06em; }
.notes { font-size: 16px; } .made, .muted { color: #6b7280; font-size: 13px; }
.headline { font-size: 20px; } .headline strong { font-size: 32px; color: #2563eb; }
.table { border-collapse: collapse; width: 100%; font-size: 14px; }
.table th, .table td { border-bottom: 1px solid #e5e7eb; padding: 6px 8px; text-align: left; vertical-align: top; }
.samples figure.row { display: flex; align-items: center; gap: 6px; margin: 6px 0; }
.samples figcaption { width: 120px; font-weight: 600; overflow-wrap: anywhere; }
.samples img { width: 96px; height: 96px; object-fit: cover; border-radius: 6px; }
.mistakes { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.mistakes figure { margin: 0; } .mistakes img, .missing { width: 140px; height: 140px; object-fit: cover;
  border-radius: 6px; margin-right: 6px; }
.missing { display: inline-flex; align-items: center; justify-content: center; background: #f3f4f6;
  color: #6b7280; font-size: 12px; text-align: center; vertical-align: top; }
pre { background: #f3f4f6; padding: 12px; border-radius: 6px; overflow-x: auto; font-size: 13px; }
details summary { cursor: pointer; color: #2563eb; margin: 8px 0; }
@media print {
  body { background: #fff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  header, section { border: none; padding: 0 0 12px; margin: 0 0 12px; break-inside: avoid; }
  .js-plotly-plot, figure, table, tr { break-inside: avoid; }
  .modebar-container { display: none !important; }
  details > summary { display: none; }
}
"""
