// divweights studio: map hover thumbnails and box/lasso selection.
// gradio's gr.Plot exposes no plotly select/hover events to Python, so this script listens on the
// plotly graph div itself: hovering shows the point's thumbnail (customdata[3], a base64 PNG);
// a selection writes the chosen indices (customdata[0]) into the "Selected indices" textbox,
// whose change event shows those images in a gallery. A selection made elsewhere (a histogram bar,
// typed indices) is highlighted on the map, and again whenever the map is redrawn.
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
      // large maps carry no pictures (cd[3] is empty): the number, class and weight only
      el.innerHTML = (cd[3] ? '<img alt="" src="data:image/png;base64,' + cd[3] + '">' : "") + "<div>#" + esc(cd[0]) + " · " +
        esc(cd[1]) + "<br>weight " + esc(cd[2]) + "× uniform</div>";
      const e = ev.event || {};
      const x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
      el.style.left = Math.min(x, window.innerWidth - 150) + "px";
      el.style.top = Math.min(y, window.innerHeight - 170) + "px";
      el.style.display = "block";
    });
    gd.on("plotly_unhover", function () { tip().style.display = "none"; });
    gd.on("plotly_selected", function (ev) {
      if (Date.now() < quietUntil) return;
      const points = (ev && ev.points) || [];
      setSelection(points.filter(p => p.customdata).map(p => p.customdata[0]).join(", "));
      gd.__dwHighlighted = gd.data;  // plotly shows its own selection; redraws re-apply it
    });
    gd.on("plotly_deselect", function () { if (Date.now() >= quietUntil) setSelection(""); });
  }
  function selectionText() {
    const box = document.querySelector("#dw-selection textarea, #dw-selection input");
    return box ? box.value : "";
  }
  function parseIndices(text) {  // "3, 17, 200-220" -> Set of numbers (what the server's parse_indices reads)
    const out = new Set();
    for (const part of String(text).split(",")) {
      const m = part.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
      if (!m) continue;
      const first = Number(m[1]), last = m[2] === undefined ? first : Math.min(Number(m[2]), first + 100000);
      for (let i = first; i <= last; i++) out.add(i);
    }
    return out;
  }
  // Highlight the selected indices on the map (plotly dims the others); false while no map is drawn.
  function highlight(text) {
    const gd = document.querySelector("#dw-map .js-plotly-plot");
    if (!gd || !gd.data || !gd.data.length || !window.Plotly) return false;
    const chosen = parseIndices(text);
    const positions = gd.data.map(trace => chosen.size === 0 ? null :
      (trace.customdata || []).reduce((acc, cd, j) => (chosen.has(Number(cd[0])) && acc.push(j), acc), []));
    // a lasso drawn before would be re-applied by plotly (and replace this selection): drop it, and
    // ignore the select/deselect events our own update causes
    quietUntil = Date.now() + 600;
    window.Plotly.update(gd, { selectedpoints: positions }, { selections: [] });
    gd.__dwHighlighted = gd.data;
    return true;
  }
  let quietUntil = 0;  // until then, plotly's selection events come from highlight(), not the user
  let highlightDue = false;  // a selection not made on the map itself, waiting for a drawn map
  document.addEventListener("input", function (ev) {  // typed by the user (not our own events)
    if (ev.isTrusted && ev.target && ev.target.closest && ev.target.closest("#dw-selection")) highlightDue = true;
  }, true);
  function applyHighlight() {
    const gd = document.querySelector("#dw-map .js-plotly-plot");
    const redrawn = gd && gd.data && gd.__dwHighlighted && gd.__dwHighlighted !== gd.data;
    if ((highlightDue || redrawn) && highlight(selectionText())) highlightDue = false;
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
    highlightDue = true;
  }
  // Plots drawn while their tab was hidden get a wrong width; a resize when a tab opens fixes them.
  document.addEventListener("click", function (ev) {
    if (ev.target && ev.target.closest && ev.target.closest("[role=tab]")) {
      setTimeout(function () { window.dispatchEvent(new Event("resize")); }, 80);
    }
  });
  setInterval(function () { bind(); bindHistogram(); applyPending(); applyHighlight(); }, 300);
})();
