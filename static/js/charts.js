// Renders every element with a data-figure attribute (a JSON list of plotly traces).
function renderCharts(root) {
  if (!window.Plotly) return;
  root.querySelectorAll("[data-figure]").forEach(function (el) {
    var traces = JSON.parse(el.dataset.figure || "[]");
    if (!traces.length) return;
    traces.forEach(function (t) {
      // a line through one or two points is invisible or misleading: show the points too
      if (t.mode === "lines" && t.x && t.x.length < 3) t.mode = "lines+markers";
    });
    var layout = JSON.parse(el.dataset.layout || "{}");
    layout.margin = layout.margin || { t: 10, r: 10, b: 40, l: 50 };
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  });
}
document.addEventListener("DOMContentLoaded", function () { renderCharts(document); });
document.addEventListener("htmx:afterSwap", function (evt) { renderCharts(evt.detail.target); });
