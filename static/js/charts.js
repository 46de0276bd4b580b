// Renders every element with a data-figure attribute (a JSON list of plotly traces).
function renderCharts(root) {
  if (!window.Plotly) return;
  root.querySelectorAll("[data-figure]").forEach(function (el) {
    var traces = JSON.parse(el.dataset.figure || "[]");
    if (!traces.length) return;
    var layout = JSON.parse(el.dataset.layout || "{}");
    layout.margin = layout.margin || { t: 10, r: 10, b: 40, l: 50 };
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  });
}
document.addEventListener("DOMContentLoaded", function () { renderCharts(document); });
document.addEventListener("htmx:afterSwap", function (evt) { renderCharts(evt.detail.target); });
