// A chart whose points carry a URL in `customdata` opens it on click (the list behind a figure).
function linkCharts(root) {
  root.querySelectorAll("[data-figure]").forEach(function (el) {
    if (!el.on || el.dataset.linked) return;
    el.dataset.linked = "1";
    el.on("plotly_click", function (data) {
      var url = data.points && data.points[0] && data.points[0].customdata;
      if (typeof url === "string" && url.charAt(0) === "/") window.location = url;
    });
  });
}
document.addEventListener("DOMContentLoaded", function () { linkCharts(document); });
document.addEventListener("htmx:afterSettle", function (evt) { linkCharts(evt.detail.target); });
// A form marked data-autosubmit is sent when one of its selects changes (its button stays for
// keyboards and no-script).
document.addEventListener("change", function (evt) {
  var form = evt.target.form;
  if (form && form.hasAttribute("data-autosubmit") && evt.target.tagName === "SELECT") form.requestSubmit();
});
