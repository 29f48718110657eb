// Clipping polygons that cut the LOD1 blocks of a building away around one of its storeys.

// Outer rings of a GeoJSON (Multi)Polygon in lon/lat without the closing vertex, grown by `grow`
// metres away from their centre: blocks drawn from a slightly different footprint go too.
function footprintRings(geom, grow = 1.0) {
  const polys = geom.type === "Polygon" ? [geom.coordinates] : geom.type === "MultiPolygon" ? geom.coordinates : [];
  return polys.map((p) => growRing(p[0].slice(0, -1), grow));
}

function growRing(ring, grow) {
  const cx = ring.reduce((a, c) => a + c[0], 0) / ring.length;
  const cy = ring.reduce((a, c) => a + c[1], 0) / ring.length;
  const mPerDegLat = 111320, mPerDegLon = 111320 * Math.cos(Cesium.Math.toRadians(cy));
  return ring.map(([x, y]) => {
    const dx = (x - cx) * mPerDegLon, dy = (y - cy) * mPerDegLat, d = Math.hypot(dx, dy) || 1;
    return [cx + (dx * (1 + grow / d)) / mPerDegLon, cy + (dy * (1 + grow / d)) / mPerDegLat];
  });
}

export function clippingFor(storey) {
  if (!storey || !storey.footprint) return undefined;
  const rings = footprintRings(storey.footprint);
  if (!rings.length) return undefined;
  return new Cesium.ClippingPolygonCollection({
    polygons: rings.map((r) => new Cesium.ClippingPolygon({
      positions: Cesium.Cartesian3.fromDegreesArray(r.flat()),
    })),
  });
}
