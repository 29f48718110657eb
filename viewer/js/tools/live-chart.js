// A 24 h line chart of one sensor's one-minute rollups (mean, with the min-max band), as SVG.
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

export function drawChart(svg, series) {
  const W = 260, H = 120, pad = 28;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = series.points;
  if (!pts.length) return;
  const ts = pts.map((p) => Date.parse(p.t));
  const t1 = Date.now(), t0 = t1 - 24 * 3600 * 1000;
  const lo = Math.min(...pts.map((p) => p.min)), hi = Math.max(...pts.map((p) => p.max));
  const span = hi - lo || 1;
  const x = (tm) => pad + ((tm - t0) / (t1 - t0)) * (W - pad - 4);
  const y = (v) => H - 14 - ((v - lo) / span) * (H - 24);
  const band = pts.map((p, i) => `${x(ts[i])},${y(p.max)}`).concat(
    pts.map((p, i) => `${x(ts[i])},${y(p.min)}`).reverse());
  svg.append(el("polygon", { points: band.join(" "), fill: "#9cc3e6", opacity: "0.5" }));
  svg.append(el("polyline", { points: pts.map((p, i) => `${x(ts[i])},${y(p.mean)}`).join(" "),
                              fill: "none", stroke: "#1f5f99", "stroke-width": "1.5" }));
  for (const [v, yy] of [[hi, y(hi)], [lo, y(lo)]]) {
    const label = el("text", { x: 2, y: yy + 4, "font-size": "9" });
    label.textContent = `${v.toPrecision(3)}`;
    svg.append(label);
  }
  const unit = el("text", { x: W - 40, y: H - 2, "font-size": "9" });
  unit.textContent = `${series.unit} · 24 h`;
  svg.append(unit);
}
