"""The drainage tool of the viewer in headless Chromium against `cim demo` (fixtures of test_viewer), which loads
the planted drainage cases: a trace colours the pipes up- and downstream, misconnections and the manholes of a
storm are marked, the waterlogging points layer shows the low-lying area, pipes are coloured by inspection
grade with their defects as markers, and a manhole's catchment is shown."""
from __future__ import annotations

import json

import sqlalchemy as sa
from test_viewer import SCALE, Page, _assert_clean, browser, demo  # noqa: F401  (module fixtures)

COUNT_MARKED = """(colours) => { const ts = window.cim.tilesets.pipes, out = {};
    const visit = (tile) => {
      if (tile.content && tile.contentReady) for (let i = 0; i < tile.content.featuresLength; i++) {
        const f = tile.content.getFeature(i);
        const c = ts.style.color.evaluateColor(f, new Cesium.Color()).toCssHexString();
        if (colours.includes(c)) out[c] = (out[c] || 0) + 1; }
      tile.children.forEach(visit); };
    visit(ts.root); return out; }"""


def _mid_sewer(engine) -> tuple[int, float, float]:
    """A sewage pipe with pipes above and below it, and its midpoint (lon, lat)."""
    with engine.connect() as c:
        return c.execute(sa.text("""
            select s.object_id, st_x(p), st_y(p) from pipe_segments s,
                 st_transform(st_lineinterpolatepoint(st_force2d(s.centerline), 0.5), 4326) p
            where s.utility = 'sewage'
              and exists (select 1 from pipe_segments u where u.to_node = s.from_node)
              and exists (select 1 from pipe_segments d where d.from_node = s.to_node)
            order by s.object_id limit 1""")).one()


def test_trace_misconnections_and_storm(browser, demo):  # noqa: F811
    folder = demo["home"] / "sample-district" / f"scale-{SCALE}"
    lowland = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["drainage"]["lowland"]
    with demo["engine"].connect() as c:  # cim demo loaded the planted drainage cases
        assert c.scalar(sa.text("select count(*) from datasets where name in ('sample-drainage-survey', "
                                "'sample-drainage-areas', 'sample-inspection')")) == 3
    p = Page(browser, demo["base"], key=demo["key"])
    p.page.wait_for_function("'pipes' in window.cim.tilesets", timeout=120_000)
    seg, lon, lat = _mid_sewer(demo["engine"])
    p.look_down_at(lon, lat, 120)
    p.page.check("#underground")
    p.js("window.cim.setOpacity(0.1)")  # a clear ground over the thin pipes the tool colours
    p.js(f"window.cim.drainage.traceSegment({seg})")
    p.page.wait_for_function("window.cim.drainage.last && window.cim.drainage.last.start", timeout=60_000)
    trace = p.js("window.cim.drainage.last")
    assert trace["start"]["id"] == seg and trace["upstream"]["segments"] and trace["downstream"]["segments"]
    p.js("document.getElementById('drainage').scrollIntoView()")
    p.settle()
    p.screenshot("viewer_drainage_trace.png")
    marked = p.js(COUNT_MARKED, ["#2962ff", "#ffee00", "#ff80ab"])
    assert marked.get("#2962ff", 0) > 0 and marked.get("#ffee00", 0) > 0 and marked.get("#ff80ab", 0) >= 1, marked
    assert "上游" in p.page.inner_text("#drainage-status")

    p.page.click("#drainage button[data-i18n=misconnections]")
    p.page.wait_for_function("window.cim.drainage.last && window.cim.drainage.last.objects", timeout=120_000)
    objects = p.js("window.cim.drainage.last.objects")
    assert {o["rule"] for o in objects} == {"rain_into_sewage", "combined_in_separated_area"}
    sewer = next(o["related_id"] for o in objects if o["rule"] == "rain_into_sewage")
    with demo["engine"].connect() as c:
        lon, lat = c.execute(sa.text("select st_x(p), st_y(p) from pipe_segments s, st_transform("
                                     "st_lineinterpolatepoint(st_force2d(s.centerline), 0.5), 4326) p "
                                     "where s.object_id = :i"), {"i": sewer}).one()
    p.look_down_at(lon, lat, 150)
    p.screenshot("viewer_drainage_misconnection.png")
    assert p.js(COUNT_MARKED, ["#ffee00"]).get("#ffee00", 0) >= 1

    p.js("window.cim.drainage.last = null")
    p.page.click("#drainage button[data-i18n=storm]")
    p.page.wait_for_function("window.cim.drainage.last && window.cim.drainage.last.flooded", timeout=600_000)
    flooded = p.js("window.cim.drainage.last.flooded")
    p.page.check("#drainage-waterlogging")
    p.page.wait_for_function("document.querySelector('#drainage-status').textContent.includes('易涝积水点')",
                             timeout=60_000)
    shown = p.js("window.cim.viewer.entities.values.filter((e) => String(e.id).startsWith('waterlogging-'))"
                 ".map((e) => Number(e.id.split('-')[1]))")
    with demo["engine"].connect() as c:
        low = dict(c.execute(sa.text("select o.key, o.id from city_objects o where o.key = any(:k)"),
                             {"k": lowland["manholes"]}).all())
        lon, lat = c.execute(sa.text("select st_x(p), st_y(p) from pipe_nodes n, st_transform(st_force2d(n.geom), "
                                     "4326) p where n.object_id = :i"), {"i": low[lowland["manholes"][0]]}).one()
    assert sorted(shown) == sorted(flooded) and set(low.values()) & set(flooded), (low, flooded)
    p.look_down_at(lon, lat, 400)
    p.screenshot("viewer_drainage_storm.png")

    p.page.select_option("#drainage-grades", "structural")
    p.page.wait_for_function("document.querySelector('#drainage-status').textContent.includes('缺陷')",
                             timeout=120_000)
    grades = p.js("window.cim.drainageLayers.grades.segments")
    defects = p.js("window.cim.viewer.entities.values.filter((e) => String(e.id).startsWith('defect-')).length")
    assert len(grades) > 0 and defects > 0
    seg = max(grades, key=lambda k: grades[k]["structural_grade"])
    with demo["engine"].connect() as c:
        lon, lat = c.execute(sa.text("select st_x(p), st_y(p) from pipe_segments s, st_transform("
                                     "st_lineinterpolatepoint(st_force2d(s.centerline), 0.5), 4326) p "
                                     "where s.object_id = :i"), {"i": int(seg)}).one()
    p.look_down_at(lon, lat, 130)
    p.screenshot("viewer_drainage_grades.png")
    colours = ["#1b9e4b", "#ffd21f", "#ff7f00", "#d7191c"]
    assert sum(p.js(COUNT_MARKED, colours).values()) >= 1
    assert p.page.locator("#drainage-legend .legend-item").count() == 4

    p.js(f"window.cim.drainage.catchment({low[lowland['manholes'][-1]]})")
    p.page.wait_for_function("window.cim.drainage.last && window.cim.drainage.last.segments", timeout=60_000)
    catch = p.js("window.cim.drainage.last")
    assert catch["segments"] and catch["parcels"]
    with demo["engine"].connect() as c:  # the middle of what drains there: its pipes and buildings
        lon, lat = c.execute(sa.text("""select st_x(p), st_y(p) from (select st_transform(st_centroid(st_collect(g)),
            4326) p from (select st_force2d(centerline) g from pipe_segments where object_id = any(:s) union all
            select footprint from city_objects where id = any(:b)) x) y"""),
                             {"s": catch["segments"], "b": catch["buildings"]}).one()
    p.look_down_at(lon, lat, 330)
    p.screenshot("viewer_drainage_catchment.png")
    assert p.js(COUNT_MARKED, ["#2962ff"]).get("#2962ff", 0) >= 1
    assert p.page.input_value("#drainage-grades") == "off" and p.js(
        "window.cim.viewer.entities.values.filter((e) => String(e.id).startsWith('defect-')).length") == 0
    _assert_clean(p)
    p.close()
