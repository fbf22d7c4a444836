// divweights studio: map hover thumbnails and box/lasso selection.
// gradio's gr.Plot exposes no plotly select/hover events to Python, so this script listens on the
// plotly graph div itself: hovering shows the point's thumbnail (customdata[3], a base64 PNG);
// a selection writes the chosen indices (customdata[0]) into the "Selected indices" textbox,
// whose change event shows those images in a gallery.
(function () {
  function tip() {
    let el = document.getElementById("dw-tip");
    if (!el) {
      el = document.createElement("div");
      el.id = "dw-tip";
      document.body.appendChild(el);
    }
    return el;
  }
  function esc(text) {
    const d = document.createElement("div");
    d.textContent = String(text);
    return d.innerHTML;
  }
  function setSelection(text) {
    const box = document.querySelector("#dw-selection textarea, #dw-selection input");
    if (!box) return;
    box.value = text;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function bind() {
    const gd = document.querySelector("#dw-map .js-plotly-plot");
    if (!gd || gd.__dwBound || typeof gd.on !== "function") return;
    gd.__dwBound = true;
    gd.on("plotly_hover", function (ev) {
      const pt = ev && ev.points && ev.points[0];
      if (!pt || !pt.customdata || pt.customdata.length < 4) return;
      const cd = pt.customdata;
      const el = tip();
      el.innerHTML = '<img alt="" src="data:image/png;base64,' + cd[3] + '"><div>#' + esc(cd[0]) + " · " +
        esc(cd[1]) + "<br>weight " + esc(cd[2]) + "× uniform</div>";
      const e = ev.event || {};
      const x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
      el.style.left = Math.min(x, window.innerWidth - 150) + "px";
      el.style.top = Math.min(y, window.innerHeight - 170) + "px";
      el.style.display = "block";
    });
    gd.on("plotly_unhover", function () { tip().style.display = "none"; });
    gd.on("plotly_selected", function (ev) {
      const points = (ev && ev.points) || [];
      setSelection(points.filter(p => p.customdata).map(p => p.customdata[0]).join(", "));
    });
    gd.on("plotly_deselect", function () { setSelection(""); });
  }
  // The Inspect tab's histogram: a click on a bar selects its images (shown on the Map tab).
  function bindHistogram() {
    const gd = document.querySelector("#dw-hist .js-plotly-plot");
    if (!gd || gd.__dwBound || typeof gd.on !== "function") return;
    gd.__dwBound = true;
    gd.on("plotly_click", function (ev) {
      const pt = ev && ev.points && ev.points[0];
      if (!pt || !pt.customdata || !pt.customdata[1]) return;
      pending = String(pt.customdata[1]);  // set once the Map tab's selection box exists (tabs render lazily)
      const tab = Array.from(document.querySelectorAll("[role=tab]")).find(el => el.textContent.trim() === "Map");
      if (tab) tab.click();
    });
  }
  let pending = null;
  function applyPending() {
    if (pending === null || !document.querySelector("#dw-selection textarea, #dw-selection input")) return;
    setSelection(pending);
    pending = null;
  }
  // Plots drawn while their tab was hidden get a wrong width; a resize when a tab opens fixes them.
  document.addEventListener("click", function (ev) {
    if (ev.target && ev.target.closest && ev.target.closest("[role=tab]")) {
      setTimeout(function () { window.dispatchEvent(new Event("resize")); }, 80);
    }
  });
  setInterval(function () { bind(); bindHistogram(); applyPending(); }, 300);
})();
