// web/util.js - small helpers shared by the dashboard's modules: building
// elements (text only, never innerHTML), checking values from the feed, local
// days and clock times, and wording durations for people.

export const $ = (sel, root = document) => root.querySelector(sel);
export const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
export const str = (v) => (typeof v === 'string' ? v : null);
export const isSeq = (v) => Number.isSafeInteger(v) && v >= 0;
export const NBSP = '\u00a0';

export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

// localStorage may be missing or refuse (private windows, file policies).
export function loadPref(key, fallback) {
  try {
    const v = window.localStorage.getItem(key);
    return v === null ? fallback : v;
  } catch {
    return fallback;
  }
}

export function savePref(key, value) {
  try { window.localStorage.setItem(key, value); } catch { /* not kept: fine */ }
}

// ---------------------------------------------------------------- days

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

// The daemon's date form: "2025-11-25", the local calendar day.
export function isoDate(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export function dayStart(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function nextDayStart(ts) {
  const d = new Date(dayStart(ts));
  d.setDate(d.getDate() + 1);
  return d.getTime();
}

// Local noon of the day `days` before the one holding ts (noon: safe across DST).
export function daysBefore(ts, days) {
  const d = new Date(dayStart(ts));
  d.setDate(d.getDate() - days);
  d.setHours(12);
  return d.getTime();
}

// Hours since local midnight, as a number (13.5 is 13:30).
export function hourOfDay(ts) {
  return (ts - dayStart(ts)) / 3600000;
}

// ---------------------------------------------------------------- words

export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}${NBSP}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}${NBSP}min ${String(s % 60).padStart(2, '0')}${NBSP}s`;
  return `${Math.floor(m / 60)}${NBSP}h ${String(m % 60).padStart(2, '0')}${NBSP}min`;
}

// Coarser, for times that run long (sitting without a break).
export function formatMinutes(ms) {
  const m = Math.floor(Math.max(0, ms) / 60000);
  if (m < 1) return `under a minute`;
  if (m < 60) return `${m}${NBSP}min`;
  return `${Math.floor(m / 60)}${NBSP}h ${String(m % 60).padStart(2, '0')}${NBSP}min`;
}

export function formatAgo(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min ago`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const shortTimeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const longDayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });

export function formatTime(ts) {
  return dayKey(ts) === dayKey(Date.now()) ? timeFmt.format(ts) : dateTimeFmt.format(ts);
}

export const formatClock = (ts) => shortTimeFmt.format(ts);
export const formatDay = (ts) => dayFmt.format(ts);
export const formatLongDay = (ts) => longDayFmt.format(ts);

// 13.25 -> "13:15" in the locale's clock (via a date today).
export function formatHour(h) {
  const d = new Date(dayStart(Date.now()));
  d.setMinutes(Math.round(h * 60));
  return shortTimeFmt.format(d);
}

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
