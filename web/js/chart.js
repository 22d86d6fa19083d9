// chart.js - time-series charts on uPlot (web/vendor, from npm). A Chart
// keeps one uPlot and feeds it new data in place; it is rebuilt only when
// its series change (a host came or went). Horizontal threshold lines (a
// policy's "avg(busy) > 32") are drawn by a hook. The chart's element
// carries data-series / data-points / data-last for tests and benchmarks,
// and the first chart drawn with data marks 'herd-chart-first'.

import { h, fill } from './dom.js';

const PALETTE = ['#3b7dd8', '#e0752d', '#3aa35b', '#c43c3c', '#8a5cc7', '#8c6d31', '#d45fa8',
	'#5d6d7e', '#b5a42a', '#2aa9b5', '#1f3a5f', '#f0a30a', '#6b8e23', '#a0522d', '#4682b4',
	'#9932cc', '#2e8b57', '#cd5c5c', '#708090', '#daa520'];

let firstMarked = false;

export function chartsAvailable() {
	return typeof window.uPlot === 'function';
}

// Aligns [{name, points: [[ts_ms, v], ...]}] on shared timestamps:
// uPlot's [xs_s, ys1, ys2, ...] with null for gaps. With stepS, each point
// goes to the end of its step (the last one in a step wins), so hosts that
// push at different moments share x values instead of each adding its own.
export function align(series, stepS) {
	const stepMs = stepS > 0 ? stepS * 1000 : 0;
	const snap = t => stepMs ? Math.ceil(t / stepMs) * stepMs : t;
	const xs = new Set();
	for (const s of series) for (const p of s.points) xs.add(snap(p[0]));
	const x = Array.from(xs).sort((a, b) => a - b);
	const idx = new Map(x.map((t, i) => [t, i]));
	const data = [x.map(t => t / 1000)];
	for (const s of series) {
		const y = new Array(x.length).fill(null);
		for (const p of s.points) y[idx.get(snap(p[0]))] = p[1];
		data.push(y);
	}
	return data;
}

function thresholdPlugin(chart) {
	return {
		hooks: {
			draw: [u => {
				const ctx = u.ctx;
				for (const t of chart.thresholds) {
					const y = u.valToPos(t.value, 'y', true);
					if (!Number.isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
					ctx.save();
					ctx.strokeStyle = t.color || '#c43c3c';
					ctx.setLineDash([6, 4]);
					ctx.lineWidth = 1.5 * devicePixelRatio;
					ctx.beginPath();
					ctx.moveTo(u.bbox.left, y);
					ctx.lineTo(u.bbox.left + u.bbox.width, y);
					ctx.stroke();
					ctx.setLineDash([]);
					ctx.fillStyle = t.color || '#c43c3c';
					ctx.font = `${11 * devicePixelRatio}px sans-serif`;
					ctx.textAlign = 'right';
					ctx.textBaseline = 'bottom';
					ctx.fillText(t.label, u.bbox.left + u.bbox.width - 4 * devicePixelRatio, y - 3 * devicePixelRatio);
					ctx.restore();
				}
			}],
		},
	};
}

export class Chart {
	// opts: {title, metric, unit, height, windowS (x spans it), zero (y from 0)}
	constructor(parent, opts) {
		this.opts = opts;
		this.thresholds = [];
		this.names = null;
		this.u = null;
		this.body = h('div', { class: 'chart-body' });
		this.el = h('div', { class: 'chart', dataset: { metric: opts.metric || '', series: '0', points: '0' } },
			h('h3', null, opts.title), this.body);
		parent.append(this.el);
		if ('ResizeObserver' in window) {
			this.ro = new ResizeObserver(() => this.resize());
			this.ro.observe(this.el);
		}
	}

	width() {
		return Math.max(240, this.el.clientWidth - 16);
	}

	resize() {
		if (this.u && Math.abs(this.u.width - this.width()) > 4)
			this.u.setSize({ width: this.width(), height: this.opts.height || 200 });
	}

	// series: [{name, points, color?}]; thresholds: [{value, label, color}];
	// stepS: the query's step, to align the series on; windowS: the span
	// the x axis shows (it may change: the group page has a window menu).
	set(series, thresholds, stepS, windowS) {
		if (windowS) this.opts.windowS = windowS;
		if (!chartsAvailable()) {
			fill(this.body, h('p', { class: 'notice' }, 'charts not available (uPlot missing: run make web)'));
			return;
		}
		this.thresholds = thresholds || [];
		const names = series.map(s => s.name);
		const data = align(series, stepS);
		if (this.u && names.join('\n') !== (this.names || []).join('\n')) {
			this.u.destroy();
			this.u = null;
		}
		if (this.u === null) {
			this.names = names;
			this.colors = series.map(s => s.color);
			fill(this.body);
			this.u = new window.uPlot(this.options(names), data, this.body);
		} else {
			this.u.setData(data);
		}
		this.mark(series);
	}

	options(names) {
		const unit = this.opts.unit || '';
		const thr = () => this.thresholds.map(t => t.value);
		return {
			width: this.width(),
			height: this.opts.height || 200,
			cursor: { drag: { x: false, y: false } },
			legend: { live: true },
			scales: {
				// the whole window, so a line grows from the right as data comes
				x: { time: true, range: (u, min, max) => {
					const w = this.opts.windowS, now = Date.now() / 1000;
					if (!w) return [min, max];
					return min === null ? [now - w, now] : [Math.min(min, now - w), Math.max(max, now)];
				} },
				y: {
					range: (u, min, max) => {
						const vs = [min, max, ...thr()].filter(Number.isFinite);
						if (!vs.length) return [0, 1];
						let lo = Math.min(...vs), hi = Math.max(...vs);
						// counts, bytes and percentages read best from zero
						if (lo > 0 && (this.opts.zero || lo < hi * 0.5)) lo = 0;
						if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
						const pad = (hi - lo) * 0.08;
						return [lo >= 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
					},
				},
			},
			axes: [{}, { size: 64, values: (u, vals) => fmtAxis(vals, unit) }],
			series: [{}, ...names.map((n, i) => ({
				label: n,
				stroke: this.colors[i] || PALETTE[i % PALETTE.length],
				width: 1.5,
				spanGaps: true,
				points: { show: false },
			}))],
			plugins: [thresholdPlugin(this)],
		};
	}

	mark(series) {
		const d = this.el.dataset;
		let points = 0, last = 0;
		for (const s of series) {
			points += s.points.length;
			for (const p of s.points) if (p[0] > last) last = p[0];
		}
		d.series = String(series.length);
		d.points = String(points);
		d.last = String(last);
		d.names = series.map(s => s.name).join(',');
		if (!firstMarked && points > 0) {
			firstMarked = true;
			performance.mark('herd-chart-first');
		}
		this.el.classList.toggle('has-data', points > 0);
	}

	dispose() {
		if (this.ro) this.ro.disconnect();
		if (this.u) this.u.destroy();
		this.u = null;
		this.el.remove();
	}
}

// Tick labels with as many decimals as the tick spacing needs, and k/M/G
// for large values (bytes/s, counts).
function fmtAxis(vals, unit) {
	const inc = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 1;
	const big = Math.max(...vals.map(Math.abs));
	const [div, suf] = big >= 1e9 ? [1e9, 'G'] : big >= 1e6 ? [1e6, 'M'] : big >= 1e4 ? [1e3, 'k'] : [1, ''];
	const dec = Math.min(6, Math.max(0, -Math.floor(Math.log10((inc / div) || 1) + 1e-9)));
	return vals.map(v => (v / div).toFixed(dec) + suf + unit);
}
