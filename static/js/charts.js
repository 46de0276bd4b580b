// Renders every element with a data-figure attribute (a JSON list of plotly traces).
function renderCharts(root) {
  if (!window.Plotly) return;
  root.querySelectorAll("[data-figure]").forEach(function (el) {
    var traces = JSON.parse(el.dataset.figure || "[]");
    if (!traces.length) return;
    traces.forEach(function (t) {
      // a line through one or two points is invisible or misleading: show the points too
      // (not of decorations such as interval bands and reference lines, which skip hover)
      if (t.mode === "lines" && t.x && t.x.length < 3 && t.hoverinfo !== "skip") {
        t.mode = "lines+markers";
      }
    });
    var layout = JSON.parse(el.dataset.layout || "{}");
    layout.margin = layout.margin || { t: 10, r: 10, b: 40, l: 50 };
    Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  });
}
document.addEventListener("DOMContentLoaded", function () { renderCharts(document); });
// After settling: htmx puts back the attributes of a swapped element that keeps its id only
// then, which would drop the classes plotly adds while rendering (and its layout with them).
document.addEventListener("htmx:afterSettle", function (evt) { renderCharts(evt.detail.target); });
