// web/charts.js - the dashboard's charts, drawn by Chart.js 3 from Debian's
// libjs-chart.js, which spinewatchd serves at /vendor/chart.js/ (no CDN).
// Chart.js is loaded with a dynamic import so that the rest of the dashboard
// works even when the package is missing: each chart then shows a note
// instead. Colours come from the --chart-* and --kind-* custom properties of
// style.css (light and dark), so a theme change re-reads them.
//
// Each chart class takes its canvas and has update(...) with plain data; the
// canvas gets an aria-label that says in words what the chart shows, and a
// data-points attribute (the number of marks drawn) for the browser test.

import { formatHour, formatDay, formatLongDay, formatClock } from './util.js';

let Chart = null;
let failed = false;
const charts = new Set();

// Loads Chart.js once; resolves true when charts can be drawn.
export async function loadCharts() {
  if (Chart) return true;
  if (failed) return false;
  try {
    const mod = await import('./vendor/chart.js/chart.mjs');
    mod.Chart.register(...mod.registerables);
    Chart = mod.Chart;
    applyDefaults();
    return true;
  } catch (err) {
    failed = true;
    console.warn(`charts unavailable: ${err && err.message}`);   // not an error: the page still works
    return false;
  }
}

export const chartsFailed = () => failed;

let palette = null;

function readPalette() {
  const cs = getComputedStyle(document.documentElement);
  const get = (n) => cs.getPropertyValue(n).trim();
  palette = {
    text: get('--muted'), strong: get('--text'), grid: get('--chart-grid'), surface: get('--surface'),
    line: get('--chart-line'), threshold: get('--chart-threshold'), zone: get('--chart-zone'),
    pop: get('--kind-pop'), click: get('--kind-click'), grind: get('--kind-grind'),
    slouch: get('--kind-slouch'), usual: get('--chart-usual'), bar: get('--chart-bar'),
    font: getComputedStyle(document.body).fontFamily,
  };
  return palette;
}

function applyDefaults() {
  const p = readPalette();
  Chart.defaults.color = p.text;
  Chart.defaults.borderColor = p.grid;
  Chart.defaults.font.family = p.font;
  Chart.defaults.font.size = 12;
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.usePointStyle = true;
  Chart.defaults.plugins.legend.labels.boxWidth = 8;
  Chart.defaults.plugins.legend.labels.boxHeight = 8;
}

// The colour scheme changed: every chart is built again with the new colours.
export function retheme() {
  if (!Chart) return;
  applyDefaults();
  for (const c of charts) c.rebuild();
}

// Base: owns one Chart on one canvas, rebuilt on a theme change.
class Base {
  constructor(canvas) {
    this.canvas = canvas;
    this.chart = null;
    this.last = null;   // arguments of the last update, to redraw after a rebuild
    charts.add(this);
  }

  ensure() {
    if (!Chart) return false;
    if (!this.chart) this.chart = new Chart(this.canvas, this.config(palette || readPalette()));
    return true;
  }

  rebuild() {
    if (this.chart) { this.chart.destroy(); this.chart = null; }
    if (this.last) this.update(...this.last);
  }

  destroy() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
    charts.delete(this);
  }

  mark(points, label) {
    this.canvas.dataset.points = String(points);
    this.canvas.setAttribute('aria-label', label);
  }
}

// ---------------------------------------------------------------- posture trend

const TREND_S = 120;

// The flexion angle over the last two minutes, with the threshold and the
// zone beyond it shaded.
export class TrendChart extends Base {
  config(p) {
    return {
      type: 'line',
      data: {
        datasets: [
          { label: 'Forward lean', data: [], borderColor: p.line, borderWidth: 2, pointRadius: 0, spanGaps: false, tension: 0.2 },
          { label: 'Threshold', data: [], borderColor: p.threshold, borderWidth: 1.5, borderDash: [5, 4], pointRadius: 0, fill: 'end', backgroundColor: p.zone },
        ],
      },
      options: {
        parsing: false,
        normalized: true,
        events: [],
        layout: { padding: { top: 4, right: 4 } },
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
        scales: {
          x: {
            type: 'linear', min: -TREND_S, max: 0,
            ticks: { stepSize: 60, callback: (v) => (v === 0 ? 'now' : `${-v / 60} min ago`), maxRotation: 0 },
            grid: { display: false },
          },
          y: {
            min: 0, suggestedMax: 30,
            ticks: { stepSize: 10, callback: (v) => `${v}°` },
          },
        },
      },
    };
  }

  // samples: [{t (performance.now() ms), a (degrees, or null while calibrating)}], oldest first
  update(samples, threshold, now) {
    this.last = [samples, threshold, now];
    if (!this.ensure()) return;
    const line = [];
    let prev = -Infinity;
    let max = 0;
    for (const s of samples) {
      const x = (s.t - now) / 1000;
      if (x < -TREND_S - 2) continue;
      if (s.t - prev > 2000 && line.length) line.push({ x: x - 0.001, y: null });  // data stopped: break the line
      line.push({ x, y: s.a });
      if (s.a !== null && s.a > max) max = s.a;
      prev = s.t;
    }
    const c = this.chart;
    c.data.datasets[0].data = line;
    c.data.datasets[1].data = [{ x: -TREND_S, y: threshold }, { x: 0, y: threshold }];
    c.options.scales.y.suggestedMax = Math.max(30, Math.ceil(Math.max(threshold * 2, max + 5) / 10) * 10);
    c.update('none');
    this.canvas.dataset.points = String(line.length);
  }
}

// ---------------------------------------------------------------- today: cracks per hour

export class HoursChart extends Base {
  config(p) {
    return {
      type: 'bar',
      data: {
        labels: Array.from({ length: 24 }, (_, h) => `${h}`),
        datasets: [
          { type: 'bar', label: 'Cracks today', data: [], backgroundColor: p.bar, borderRadius: 2, order: 2, pointStyle: 'rect' },
          {
            type: 'line', label: 'Your usual rate', data: [], borderColor: p.usual, borderDash: [4, 3], borderWidth: 2,
            pointRadius: 0, stepped: 'middle', spanGaps: false, order: 1, pointStyle: 'line',
          },
        ],
      },
      options: {
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: {
            position: 'bottom',
            labels: { padding: 10, filter: (item, data) => !data.datasets[item.datasetIndex].hidden, sort: (a, b) => a.datasetIndex - b.datasetIndex },
          },
          tooltip: { callbacks: { title: (items) => (items.length ? `${items[0].label}:00 to ${Number(items[0].label) + 1}:00` : '') } },
        },
        scales: {
          x: { grid: { display: false }, ticks: { autoSkip: false, maxRotation: 0, callback: (v, i) => (i % 3 === 0 ? `${i}h` : '') } },
          y: { beginAtZero: true, suggestedMax: 3, ticks: { precision: 0 } },
        },
      },
    };
  }

  // hours: 24 counts; usual: 24 numbers or nulls, or null when not known yet
  update(hours, usual, hourNow) {
    this.last = [hours, usual, hourNow];
    if (!this.ensure()) return;
    const c = this.chart;
    c.data.datasets[0].data = hours;
    c.data.datasets[1].data = usual || [];
    c.data.datasets[1].hidden = !usual;
    c.update('none');
    const busy = hours.map((n, i) => (n ? `${n} at ${i}h` : '')).filter(Boolean);
    let label = `Cracks per hour today: ${busy.length ? busy.join(', ') : 'none yet'}.`;
    if (usual && num0(usual[hourNow]) !== null) label += ` Usually about ${Math.round(usual[hourNow] * 10) / 10} in this hour.`;
    this.mark(busy.length, label);
  }
}

const num0 = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

// ---------------------------------------------------------------- today: timeline

const ROWS = ['Slouch', 'Grind', 'Click', 'Pop'];
const TICK_STEPS_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360];

// Clock-time ticks on round minutes for an axis in hours since midnight.
function timeTicks(axis) {
  const span = (axis.max - axis.min) * 60;
  const step = TICK_STEPS_MIN.find((m) => span / m <= 5) || 360;
  const ticks = [];
  for (let m = Math.ceil((axis.min * 60) / step) * step; m <= axis.max * 60; m += step) ticks.push({ value: m / 60 });
  axis.ticks = ticks;
}
const ROW = { slouch: 0, grind: 1, click: 2, pop: 3 };
const SHAPE = { pop: 'circle', click: 'triangle', grind: 'rectRot' };

// The day so far: each crack as a mark on its kind's row (shape and colour by
// kind), each slouch as a bar from its onset to its end (or to now).
export class TimelineChart extends Base {
  config(p) {
    const crack = (kind, label) => ({
      label, data: [], pointStyle: SHAPE[kind], backgroundColor: p[kind], borderColor: p.surface, borderWidth: 1,
      pointRadius: (ctx) => 4 + Math.round(((ctx.raw && ctx.raw.intensity) || 50) / 30),
      pointHoverRadius: 8,
    });
    return {
      type: 'scatter',
      data: {
        datasets: [
          {
            label: 'Slouch', data: [], showLine: true, spanGaps: false, borderColor: p.slouch, backgroundColor: p.slouch,
            borderWidth: 12, borderCapStyle: 'butt', pointRadius: 0, pointHitRadius: 6, pointStyle: 'rect',
          },
          crack('grind', 'Grind'),
          crack('click', 'Click'),
          crack('pop', 'Pop'),
        ],
      },
      options: {
        parsing: false,
        layout: { padding: { right: 6 } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const r = ctx.raw || {};
                if (ctx.datasetIndex === 0) return r.text || 'Slouch';
                return `${ctx.dataset.label} at ${formatClock(r.ts)}${r.intensity != null ? `, intensity ${r.intensity}` : ''}`;
              },
            },
          },
        },
        scales: {
          x: {
            type: 'linear', min: 0, max: 24,
            afterBuildTicks: timeTicks,
            ticks: { maxRotation: 0, autoSkip: false, callback: (v) => formatHour(v) },
          },
          y: {
            type: 'linear', min: -0.6, max: 3.6, afterBuildTicks: (axis) => { axis.ticks = ROWS.map((_, i) => ({ value: i })); },
            ticks: { callback: (v) => ROWS[v] ?? '' },
            grid: { display: false },
          },
        },
      },
    };
  }

  // cracks: [{ts, crack, intensity}]; slouches: [{start, end (null: still on)}]; from..to in ms
  update(cracks, slouches, from, to, midnight) {
    this.last = [cracks, slouches, from, to, midnight];
    if (!this.ensure()) return;
    const h = (ts) => (ts - midnight) / 3600000;
    const byKind = { pop: [], click: [], grind: [] };
    for (const c of cracks) if (c.ts >= from && c.ts <= to && byKind[c.crack]) byKind[c.crack].push({ x: h(c.ts), y: ROW[c.crack], ts: c.ts, intensity: c.intensity });
    const bars = [];
    let slouchMs = 0;
    for (const s of slouches) {
      const a = Math.max(s.start, from);
      const b = Math.min(s.end ?? to, to);
      if (b < a) continue;
      const text = `Slouch ${formatClock(s.start)} to ${s.end === null ? 'now' : formatClock(s.end)}`;
      // at least a sliver, so a short slouch still shows
      bars.push({ x: h(a), y: 0, text }, { x: Math.max(h(b), h(a) + (to - from) / 3600000 / 300), y: 0, text }, { x: h(b), y: null });
      slouchMs += b - a;
    }
    const c = this.chart;
    c.data.datasets[0].data = bars;
    c.data.datasets[1].data = byKind.grind;
    c.data.datasets[2].data = byKind.click;
    c.data.datasets[3].data = byKind.pop;
    c.options.scales.x.min = h(from);
    c.options.scales.x.max = h(to);
    c.update('none');
    const n = byKind.pop.length + byKind.click.length + byKind.grind.length;
    const slouchN = bars.length / 3;
    this.mark(n + slouchN, `Timeline of today from ${formatClock(from)} to ${formatClock(to)}: ` +
      `${byKind.pop.length} pops, ${byKind.click.length} clicks, ${byKind.grind.length} grinds; ` +
      `${slouchN} slouch${slouchN === 1 ? '' : 'es'}, ${Math.round(slouchMs / 60000)} min in all.`);
    this.canvas.dataset.cracks = String(n);
    this.canvas.dataset.slouches = String(slouchN);
  }
}

// ---------------------------------------------------------------- weeks

// days: [{ts (local noon), date, cracks, pop, click, grind, slouch_min} or {ts, date, none: true}], oldest first
function dayLabels(days) {
  return days.map((d) => formatDay(d.ts));
}

export class WeeksCracksChart extends Base {
  config(p) {
    const kind = (k, label) => ({ label, data: [], backgroundColor: p[k], stack: 'cracks', pointStyle: SHAPE[k], borderColor: p.surface, borderWidth: { top: 1 } });
    return {
      type: 'bar',
      data: { labels: [], datasets: [kind('pop', 'Pops'), kind('click', 'Clicks'), kind('grind', 'Grinds')] },
      options: {
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: { position: 'bottom', labels: { padding: 10 } },
          tooltip: { callbacks: { title: (items) => (items.length ? formatLongDay(this.days[items[0].dataIndex].ts) : '') } },
        },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { stacked: true, beginAtZero: true, suggestedMax: 5, ticks: { precision: 0 } },
        },
      },
    };
  }

  update(days) {
    this.last = [days];
    this.days = days;
    if (!this.ensure()) return;
    const c = this.chart;
    c.data.labels = dayLabels(days);
    c.data.datasets[0].data = days.map((d) => (d.none ? null : d.pop));
    c.data.datasets[1].data = days.map((d) => (d.none ? null : d.click));
    c.data.datasets[2].data = days.map((d) => (d.none ? null : d.grind));
    c.update('none');
    const worn = days.filter((d) => !d.none);
    const total = worn.reduce((a, d) => a + d.cracks, 0);
    this.mark(worn.length, `Cracks per day over the last ${days.length / 7} weeks: ${worn.length} days with data, ` +
      `${total} cracks in all${worn.length ? `, ${Math.round((total / worn.length) * 10) / 10} per worn day` : ''}.`);
  }
}

export class WeeksSlouchChart extends Base {
  config(p) {
    return {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'Minutes slouched', data: [], backgroundColor: p.slouch, pointStyle: 'rect' }] },
      options: {
        plugins: {
          legend: { position: 'bottom', labels: { padding: 10 } },
          tooltip: { callbacks: { title: (items) => (items.length ? formatLongDay(this.days[items[0].dataIndex].ts) : ''), label: (ctx) => `${ctx.parsed.y} min slouched` } },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { beginAtZero: true, suggestedMax: 10, ticks: { callback: (v) => `${v} min` } },
        },
      },
    };
  }

  update(days) {
    this.last = [days];
    this.days = days;
    if (!this.ensure()) return;
    const c = this.chart;
    c.data.labels = dayLabels(days);
    c.data.datasets[0].data = days.map((d) => (d.none ? null : d.slouch_min));
    c.update('none');
    const worn = days.filter((d) => !d.none);
    const total = worn.reduce((a, d) => a + d.slouch_min, 0);
    this.mark(worn.length, `Minutes slouched per day over the last ${days.length / 7} weeks: ${worn.length} days with data, ` +
      `${Math.round(total)} min in all.`);
  }
}
