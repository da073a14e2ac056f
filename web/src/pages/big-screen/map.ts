// The big screen's map (MapLibre GL JS) with no tiles from anywhere: the base map is the city's own
// station and grid polygons from the API (ListStations), coloured by district; incidents, units and
// the H3 heat/cold map are vector layers over it.
import * as maplibregl from "maplibre-gl";
import type { FilterSpecification, GeoJSONSource, MapLayerMouseEvent, MapGeoJSONFeature, ExpressionSpecification } from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
// MapLibre's worker, as a file of the build (assets/maplibre-gl-worker-<hash>.mjs) the gateway serves.
import workerUrl from "maplibre-gl/dist/maplibre-gl-worker.mjs?url";
import { cellToBoundary } from "h3-js";
import { DISTRICT_COLOURS, PRIORITY_COLOURS, CASE_STATUS_RINGS, STALE_COLOUR, UNIT_STATUS_COLOURS } from "./model";

export interface StationArea {
  stationId: string;
  name: string;
  district: string;
  hq: [number, number];
  boundary: GeoJSON.Geometry;
  grids: { gridId: string; name: string; boundary: GeoJSON.Geometry }[];
}

export type HeatMode = "off" | "heat" | "cold";
export interface HeatCell { cell: string; incidents: number; available: number; stationId: string }

type Bounds = [number, number, number, number];

export interface CoverageCircle { lon: number; lat: number; radiusM: number; minutes: number; stationId: string; district: string }

const CIRCLE_POINTS = 24;

/** A circle of `radiusM` metres around a point, as a closed ring (equirectangular: fine at city scale). */
function ring(lon: number, lat: number, radiusM: number): [number, number][] {
  const dLat = radiusM / 111_320;
  const dLon = dLat / Math.cos((lat * Math.PI) / 180);
  const out: [number, number][] = [];
  for (let i = 0; i <= CIRCLE_POINTS; i++) {
    const a = (2 * Math.PI * i) / CIRCLE_POINTS;
    out.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  return out;
}

maplibregl.setWorkerUrl(workerUrl);

const EMPTY: GeoJSON.FeatureCollection = { type: "FeatureCollection", features: [] };

function matchColours(property: string, colours: Record<number, string>, fallback: string): ExpressionSpecification {
  const pairs = Object.entries(colours).flatMap(([k, v]) => [Number(k), v]);
  return ["match", ["get", property], ...pairs, fallback] as unknown as ExpressionSpecification;
}

export function boundsOf(stations: StationArea[]): Bounds {
  let [w, s, e, n] = [180, 90, -180, -90];
  const visit = (c: unknown): void => {
    if (Array.isArray(c) && typeof c[0] === "number") {
      const [x, y] = c as number[];
      w = Math.min(w, x); e = Math.max(e, x); s = Math.min(s, y); n = Math.max(n, y);
    } else if (Array.isArray(c)) c.forEach(visit);
  };
  for (const st of stations) visit((st.boundary as GeoJSON.Polygon).coordinates);
  return [w, s, e, n];
}

export class CityMap {
  readonly map: maplibregl.Map;
  private readonly ready: Promise<void>;
  private districtMarkers: maplibregl.Marker[] = [];

  constructor(container: HTMLElement, private readonly stations: StationArea[], onCaseClick: (name: string) => void) {
    const districts = [...new Set(stations.map((s) => s.district))];
    const districtColour = (d: string) => DISTRICT_COLOURS[districts.indexOf(d) % DISTRICT_COLOURS.length];
    const stationFeatures: GeoJSON.FeatureCollection = {
      type: "FeatureCollection",
      features: stations.map((s) => ({
        type: "Feature", geometry: s.boundary,
        properties: { stationId: s.stationId, name: s.name, district: s.district, colour: districtColour(s.district) },
      })),
    };
    const gridFeatures: GeoJSON.FeatureCollection = {
      type: "FeatureCollection",
      features: stations.flatMap((s) => s.grids.map((g) => ({
        type: "Feature" as const, geometry: g.boundary,
        properties: { gridId: g.gridId, stationId: s.stationId, district: s.district },
      }))),
    };
    const bounds = boundsOf(stations);
    this.map = new maplibregl.Map({
      container,
      bounds,
      fitBoundsOptions: { padding: 24 },
      attributionControl: false,
      // Nothing but the layers below: no tiles, no glyphs, no sprites from anywhere.
      style: {
        version: 8,
        sources: {
          stations: { type: "geojson", data: stationFeatures },
          grids: { type: "geojson", data: gridFeatures },
          heat: { type: "geojson", data: EMPTY },
          coverage: { type: "geojson", data: EMPTY },
          units: { type: "geojson", data: EMPTY },
          cases: { type: "geojson", data: EMPTY },
        },
        layers: [
          { id: "background", type: "background", paint: { "background-color": "#070d16" } },
          { id: "stations-fill", type: "fill", source: "stations", paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.85 } },
          { id: "grids-line", type: "line", source: "grids", paint: { "line-color": "#3a5068", "line-width": 0.5, "line-opacity": 0.6 } },
          { id: "heat-fill", type: "fill", source: "heat", paint: { "fill-color": "#ff3b30", "fill-opacity": 0.6 } },
          { id: "stations-line", type: "line", source: "stations", paint: { "line-color": "#7fa7cf", "line-width": 1.2 } },
          // The 1-3-5 minute response circles (1-3-5分钟响应圈) around available units, the 5-minute ring faintest.
          {
            id: "coverage-fill", type: "fill", source: "coverage", layout: { visibility: "none" },
            paint: { "fill-color": ["match", ["get", "minutes"], 1, "#30d158", 3, "#64d2ff", "#0a84ff"],
                     "fill-opacity": ["match", ["get", "minutes"], 1, 0.22, 3, 0.12, 0.07] },
          },
          {
            id: "units", type: "circle", source: "units",
            paint: {
              "circle-radius": 3.5,
              "circle-color": ["case", ["get", "stale"], STALE_COLOUR, matchColours("status", UNIT_STATUS_COLOURS, "#8e8e93")],
              "circle-opacity": ["case", ["get", "stale"], 0.55, 0.95],
              "circle-stroke-width": 0.5, "circle-stroke-color": "#0b1420",
            },
          },
          {
            id: "cases", type: "circle", source: "cases",
            paint: {
              "circle-radius": ["case", ["get", "followed"], 11, 7],
              "circle-color": matchColours("priority", PRIORITY_COLOURS, "#32ade6"),
              "circle-stroke-width": 2.5,
              "circle-stroke-color": matchColours("status", CASE_STATUS_RINGS, "#ffffff"),
            },
          },
        ],
      },
    });
    this.map.on("click", "cases", (ev: MapLayerMouseEvent) => {
      const name = ev.features?.[0]?.properties?.name;
      if (name) onCaseClick(String(name));
    });
    this.map.on("mouseenter", "cases", () => { this.map.getCanvas().style.cursor = "pointer"; });
    this.map.on("mouseleave", "cases", () => { this.map.getCanvas().style.cursor = ""; });
    this.ready = new Promise((resolve) => this.map.once("load", () => resolve()));
    void this.ready.then(() => this.labelDistricts(districts));
  }

  /** District names (HTML markers: the map has no glyphs to draw text with). */
  private labelDistricts(districts: string[]): void {
    for (const d of districts) {
      const own = this.stations.filter((s) => s.district === d);
      const lon = own.reduce((a, s) => a + s.hq[0], 0) / own.length;
      const lat = own.reduce((a, s) => a + s.hq[1], 0) / own.length;
      const el = document.createElement("div");
      el.className = "district-label";
      el.textContent = d;
      this.districtMarkers.push(new maplibregl.Marker({ element: el }).setLngLat([lon, lat]).addTo(this.map));
    }
  }

  private async set(source: string, data: GeoJSON.FeatureCollection): Promise<void> {
    await this.ready;
    (this.map.getSource(source) as GeoJSONSource).setData(data);
  }

  setCases(data: GeoJSON.FeatureCollection): Promise<void> { return this.set("cases", data); }

  /** The response circles: for each available unit, the ground it reaches in 1, 3 and 5 minutes. */
  async setCoverage(circles: CoverageCircle[] | null): Promise<void> {
    await this.ready;
    this.map.setLayoutProperty("coverage-fill", "visibility", circles ? "visible" : "none");
    await this.set("coverage", {
      type: "FeatureCollection",
      features: (circles ?? []).map((c) => ({
        type: "Feature" as const,
        geometry: { type: "Polygon" as const, coordinates: [ring(c.lon, c.lat, c.radiusM)] },
        properties: { minutes: c.minutes, stationId: c.stationId, district: c.district },
      })),
    });
  }
  setUnits(data: GeoJSON.FeatureCollection): Promise<void> { return this.set("units", data); }

  async setHeat(cells: HeatCell[], mode: HeatMode): Promise<void> {
    await this.ready;
    this.map.setLayoutProperty("heat-fill", "visibility", mode === "off" ? "none" : "visible");
    const value = (c: HeatCell) => (mode === "cold" ? c.available : c.incidents);
    const max = Math.max(1, ...cells.map(value));
    const districtOf = new Map(this.stations.map((s) => [s.stationId, s.district]));
    this.map.setPaintProperty("heat-fill", "fill-color", mode === "cold"
      ? ["interpolate", ["linear"], ["get", "share"], 0, "#0b2540", 0.5, "#1e78c8", 1, "#9ee7ff"]
      : ["interpolate", ["linear"], ["get", "share"], 0, "#3a1200", 0.5, "#e0561a", 1, "#ffe14d"]);
    await this.set("heat", {
      type: "FeatureCollection",
      features: cells.filter((c) => value(c) > 0).map((c) => {
        const ring = cellToBoundary(c.cell, true);
        return {
          type: "Feature" as const,
          geometry: { type: "Polygon" as const, coordinates: [[...ring, ring[0]]] },
          properties: { cell: c.cell, stationId: c.stationId, district: districtOf.get(c.stationId) ?? "",
                        value: value(c), share: value(c) / max },
        };
      }),
    });
  }

  /** Shows only one district's or one station's features (null for all). */
  async filter(district: string | null, station: string | null): Promise<void> {
    await this.ready;
    const byArea: FilterSpecification | null = station
      ? ["==", ["get", "stationId"], station]
      : district ? ["==", ["get", "district"], district] : null;
    for (const layer of ["cases", "units", "heat-fill", "coverage-fill"]) this.map.setFilter(layer, byArea);
    const inView = this.stations.filter((s) => (station ? s.stationId === station : !district || s.district === district));
    if (inView.length) this.map.fitBounds(boundsOf(inView), { padding: 24, duration: 600 });
  }

  async flyTo(lon: number, lat: number): Promise<void> {
    await this.ready;
    this.map.easeTo({ center: [lon, lat], zoom: Math.max(this.map.getZoom(), 13), duration: 600 });
  }

  /** The incidents drawn on the map now (the browser tests read this). */
  renderedCaseNames(): string[] {
    return this.map.queryRenderedFeatures({ layers: ["cases"] }).map((f: MapGeoJSONFeature) => String(f.properties?.name));
  }

  destroy(): void {
    this.districtMarkers.forEach((m) => m.remove());
    this.map.remove();
  }
}
