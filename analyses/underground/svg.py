"""SVG drawings of sections: a cross-section to scale (pipes in their CJJ 61 colours), and a long section
with a vertical exaggeration. Every text is escaped; sizes in px of a 900 px wide drawing."""
from __future__ import annotations

from html import escape

WIDTH, MARGIN = 900, 60


def _svg(height: float, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="sans-serif" font-size="11">'
            f"<title>{escape(title)}</title>" + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "middle", cls: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"'
            + (f' class="{cls}"' if cls else "") + f">{escape(s)}</text>")


def cross_section(section: dict) -> str:
    """Ground line, pipes to scale (the same scale across and down), depth and gap labels."""
    pipes = section["pipes"]
    length = max(section["length_m"], 1.0)
    grounds = [p["ground_z"] for p in pipes if p["ground_z"] is not None]
    top = max(grounds) if grounds else max([p["axis_z"] for p in pipes], default=0.0) + 1
    bottom = min([p["axis_z"] - (p["height_m"] or 0) for p in pipes], default=top - 3) - 1.0
    scale = (WIDTH - 2 * MARGIN) / length
    height = (top - bottom) * scale + 2 * MARGIN

    def xy(ch: float, z: float) -> tuple[float, float]:
        return MARGIN + ch * scale, MARGIN + (top - z) * scale

    pts = [(0.0, pipes[0]["ground_z"] if pipes and pipes[0]["ground_z"] is not None else top)]
    pts += [(p["chainage_m"], p["ground_z"]) for p in pipes if p["ground_z"] is not None]
    pts.append((length, pts[-1][1]))
    ground = " ".join("{:.1f},{:.1f}".format(*xy(c, z)) for c, z in pts)
    body = [f'<polyline class="ground" points="{ground}" fill="none" stroke="#6b4f2a" stroke-width="2"/>']
    for p in pipes:
        cx, cy = xy(p["chainage_m"], p["axis_z"])
        w, h = (p["width_m"] or 0.1) * scale, (p["height_m"] or 0.1) * scale
        fill = "rgb({},{},{})".format(*p["color"])
        shape = (f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="{w / 2:.1f}" ry="{h / 2:.1f}"' if p["width_m"] ==
                 p["height_m"] else f'<rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}" height="{h:.1f}"')
        body.append(f'{shape} class="pipe" fill="{fill}" stroke="#222"><title>{escape(str(p["key"]))}</title>'
                    + ("</ellipse>" if p["width_m"] == p["height_m"] else "</rect>"))
        label = f'{p["utility"]} {p["diameter_mm"] or ""} top {p["top_depth_m"]} m'
        body.append(_text(cx, cy - h / 2 - 4, label, cls="label"))
        body.append(_text(cx, height - MARGIN / 2, f'{p["chainage_m"]:.2f}', cls="chainage"))
        if p["gap_after_m"] is not None:
            body.append(_text(cx, height - MARGIN / 2 + 14, f'gap {p["gap_after_m"]:.2f} m', "start", "gap"))
    body.append(_text(WIDTH / 2, 16, f"cross-section {length:.1f} m (1:1)"))
    return _svg(height, body, "cross-section")


def long_section(profile: dict) -> str:
    """Ground, invert and crown lines along the chainage, manholes, slopes; adverse segments in red."""
    segs, holes = profile["segments"], profile["manholes"]
    length = max(profile["length_m"] or 1.0, 1.0)
    zs = [z for h in holes for z in (h["ground_z"], h["invert_z"]) if z is not None]
    zs += [z for s in segs for z in (s["invert_up"], s["invert_down"]) if z is not None]
    top, bottom = (max(zs) + 0.5, min(zs) - 0.5) if zs else (1.0, 0.0)
    sx = (WIDTH - 2 * MARGIN) / length
    sy = min(40.0, 300 / max(top - bottom, 0.1))  # vertical exaggeration: the drawing stays readable
    height = (top - bottom) * sy + 2 * MARGIN

    def xy(ch: float, z: float) -> str:
        return f"{MARGIN + ch * sx:.1f},{MARGIN + (top - z) * sy:.1f}"

    ground = " ".join(xy(h["chainage_m"], h["ground_z"]) for h in holes if h["ground_z"] is not None)
    body = [f'<polyline class="ground" points="{ground}" fill="none" stroke="#6b4f2a" stroke-width="2"/>']
    for s in segs:
        if s["invert_up"] is None or s["invert_down"] is None:
            continue
        colour = "#d00" if s["adverse"] else "#4c3926"
        a, b = xy(s["from_chainage_m"], s["invert_up"]), xy(s["to_chainage_m"], s["invert_down"])
        body.append(f'<polyline class="invert{" adverse" if s["adverse"] else ""}" points="{a} {b}" '
                    f'stroke="{colour}" stroke-width="3" fill="none"/>')
        mid = (s["from_chainage_m"] + s["to_chainage_m"]) / 2
        x, y = xy(mid, (s["invert_up"] + s["invert_down"]) / 2).split(",")
        slope = "?" if s["slope"] is None else f'{s["slope"] * 1000:.1f}‰'
        body.append(_text(float(x), float(y) + 16, f'{slope} {s["length_m"]:.1f} m', cls="slope"))
    for h in holes:
        if h["ground_z"] is None or h["invert_z"] is None:
            continue
        x, y0 = xy(h["chainage_m"], h["ground_z"]).split(",")
        y1 = xy(h["chainage_m"], h["invert_z"]).split(",")[1]
        body.append(f'<line class="manhole" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" stroke="#333" stroke-width="6"/>')
        body.append(_text(float(x), float(y0) - 6, str(h["key"]), cls="manhole-label"))
    body.append(_text(WIDTH / 2, 16, f"long section {length:.1f} m ({profile['utility']}, vertical x{sy / sx:.0f})"))
    return _svg(height, body, "long section")
