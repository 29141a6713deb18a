/* Model Scatterplot, drawn in the browser (cnc/ui/scatter.py) from the VALUES store: the
   encodings and the passing set come from assets/encoding.js, the Pareto front follows
   cnc.analysis.pareto. Each change restyles only the traces it changes, as a Patch of the figure
   (a colour change sends new marker colours, not a new figure). Traces: 0 failing the filters
   (faint), 1 passing (the only selectable one), 2 the front's step line; the selection is
   outlined by layout shapes. */
window.dash_clientside = window.dash_clientside || {};
(function() {
    var noUpdate = function() { return window.dash_clientside.no_update; };
    var last = {};  // what the figure shows: its inputs and the trace objects drawn

    function rgba(hex, alpha) {
        if (alpha >= 1) { return hex; }
        return 'rgba(' + [1, 3, 5].map(function(i) { return parseInt(hex.slice(i, i + 2), 16); }).join(',') + ',' + alpha + ')';
    }

    /* A colour as plotly's WebGL traces take it without parsing text: [r, g, b, alpha], channels
       in 0..1 (plotly reads channels <= 1 as fractions). Parsing 5,000 colour strings (culori,
       through the page's slow String.trim polyfill) was half of a scattergl restyle. One array per
       colour, shared by every point that has it. */
    var channelCache = new Map();
    function channels(hex, alpha) {
        var key = hex + alpha, c = channelCache.get(key);
        if (!c) {
            c = [1, 3, 5].map(function(i) { return parseInt(hex.slice(i, i + 2), 16) / 255; }).concat([alpha]);
            channelCache.set(key, c);
        }
        return c;
    }

    /* WebGL canvases at the screen's pixel ratio (plotly draws them at 2x whatever the screen:
       four times the pixels to draw and composite on an ordinary screen). */
    function glRatio() { return Math.max(1, Math.min(2, Math.round(window.devicePixelRatio || 1))); }

    function axisTitle(vals, name) {
        var m = Object.prototype.hasOwnProperty.call(vals.metrics, name) ? vals.metrics[name] : null;
        if (!m) { return ''; }
        return name + (m.unit ? ' (' + m.unit + ')' : '') + ' — ' + (m.hib ? 'higher is better' : 'lower is better');
    }

    /* Ids of the non-dominated points among `idx`, by x ascending (cnc.analysis.pareto.pareto_front):
       at least as good on both axes and better on one dominates; identical points are all kept. */
    function pareto(idx, xv, yv, xHib, yHib) {
        var sx = xHib ? 1 : -1, sy = yHib ? 1 : -1;
        var pts = idx.map(function(i) { return [sx * xv[i], sy * yv[i], i, xv[i]]; });
        pts.sort(function(a, b) { return b[0] - a[0]; });  // best x first (stable)
        var front = [], best = -Infinity, k = 0;
        while (k < pts.length) {
            var j = k, top = -Infinity;
            for (; j < pts.length && pts[j][0] === pts[k][0]; j++) { top = Math.max(top, pts[j][1]); }
            if (top > best) {
                for (var q = k; q < j; q++) { if (pts[q][1] === top) { front.push([pts[q][3], pts[q][2]]); } }
                best = top;
            }
            k = j;
        }
        front.sort(function(a, b) { return a[0] - b[0]; });
        return front.map(function(f) { return f[1]; });
    }

    /* Circles of a fixed pixel size around the selected points: layout shapes, which plotly
       redraws without recomputing the 5,000-point traces (a trace would cost a full replot). */
    function outlines(settings, selection, vals, xv, yv, szs) {
        var index = window.cncEncode.index(vals), shapes = [];
        (Array.isArray(selection) ? selection : []).forEach(function(id) {
            var i = index.get(id);
            if (i === undefined || !xv || !yv || xv[i] === null || yv[i] === null) { return; }
            var r = (szs[i] + 7) / 2;
            shapes.push({type: 'circle', xref: 'x', yref: 'y', xsizemode: 'pixel', ysizemode: 'pixel',
                         xanchor: xv[i], yanchor: yv[i], x0: -r, x1: r, y0: -r, y1: r, layer: 'above',
                         fillcolor: 'rgba(0,0,0,0)', line: {color: settings.selected, width: 2.5}});
        });
        return shapes;
    }

    /* The traces, axes and front (inputs: axes, encodings, filters as drawn, values; the
       selection is a State, so that this redraw never waits for the server's selection check),
       with the selection's outlines when the points move. */
    function draw(settings, args) {
        var x = args[0], y = args[1], color = args[2], size = args[3], filters = args[4],
            vals = args[5], figure = args[6], selection = args[7], config = args[8];
        if (!vals || !vals.v || !figure || !figure.data || figure.data.length < 3) { return [noUpdate(), noUpdate(), noUpdate()]; }
        var enc = window.cncEncode, has = Object.prototype.hasOwnProperty;
        var fresh = figure.data[1] !== last.models;  // a new page (or figure): draw everything
        var xv = has.call(vals.v, x) ? vals.v[x] : null, yv = has.call(vals.v, y) ? vals.v[y] : null;
        var now = {vals: vals, x: x, y: y, cols: enc.colours(vals, color),
                   szs: enc.sizes(vals, size, settings.px[0], settings.px[1]), hollow: enc.hollow(vals, size).flags,
                   pass: enc.passing(vals, filters), sel: JSON.stringify(selection || [])};
        var changed = function(keys) { return fresh || keys.some(function(k) { return now[k] !== last[k]; }); };
        var kind = figure.data[1].type, gl = kind === 'scattergl', patch = new window.dash_clientside.Patch(), any = false;
        var both = [];
        if (xv && yv) { for (var i = 0; i < vals.n; i++) { if (xv[i] !== null && yv[i] !== null) { both.push(i); } } }

        var colours = function(idx, alpha) {
            return idx.map(gl ? function(i) { return channels(now.cols[i], alpha); } : function(i) { return rgba(now.cols[i], alpha); });
        };
        var markers = function(idx, name, alpha, lineWidth, lineColor) {
            var marker = {color: colours(idx, alpha),
                          size: idx.map(function(i) { return now.szs[i]; }),
                          line: {width: lineWidth, color: lineColor}};
            if (idx.some(function(i) { return now.hollow[i]; })) {  // an open symbol's ring takes the marker colour
                marker.symbol = idx.map(function(i) { return now.hollow[i] ? 'circle-open' : 'circle'; });
                marker.line.width = idx.map(function(i) { return now.hollow[i] ? settings.missingLine : lineWidth; });
            }
            return Object.assign({type: kind, mode: 'markers', name: name, x: idx.map(function(i) { return xv[i]; }),
                                  y: idx.map(function(i) { return yv[i]; }),
                                  customdata: idx.map(function(i) { return vals.ids[i]; }), hoverinfo: 'none',
                                  marker: marker}, settings.noDim);
        };
        var out = [noUpdate(), noUpdate(), noUpdate()];
        if (fresh && gl && config && config.plotGlPixelRatio !== glRatio()) {  // applied with this figure
            out[2] = Object.assign({}, config, {plotGlPixelRatio: glRatio()});
        }
        // A colour change alone keeps every other array of the traces (plotly compares arrays by identity)
        var recolour = function(trace, idx, alpha) {
            return Object.assign({}, trace, {marker: Object.assign({}, trace.marker, {color: colours(idx, alpha)})});
        };
        if (changed(['vals', 'x', 'y', 'szs', 'hollow', 'pass'])) {
            now.idx = [both.filter(function(i) { return !now.pass.ok[i]; }), both.filter(function(i) { return now.pass.ok[i]; })];
            now.filtered = markers(now.idx[0], 'filtered out', 0.2, 0, '#ffffff');
            now.models = markers(now.idx[1], 'models', 1.0, 0.6, '#ffffff');
            patch.assign(['data', 0], now.filtered).assign(['data', 1], now.models);
            any = true;
        } else if (changed(['cols'])) {
            now.idx = last.idx;
            now.filtered = recolour(last.filtered, now.idx[0], 0.2);
            now.models = recolour(last.models, now.idx[1], 1.0);
            patch.assign(['data', 0], now.filtered).assign(['data', 1], now.models);
            any = true;
        } else {
            now.idx = last.idx;
            now.filtered = last.filtered;
            now.models = last.models;
        }
        if (changed(['vals', 'x', 'y', 'pass'])) {
            var xm = xv && vals.metrics[x], ym = yv && vals.metrics[y];
            var front = xm && ym ? pareto(both.filter(function(i) { return now.pass.ok[i]; }), xv, yv, xm.hib, ym.hib) : [];
            patch.assign(['data', 2], {type: 'scatter', mode: 'lines', name: 'Pareto front', hoverinfo: 'skip',
                x: front.map(function(i) { return xv[i]; }), y: front.map(function(i) { return yv[i]; }),
                line: {shape: xm && xm.hib ? 'vh' : 'hv', color: '#444', width: 1.5, dash: 'dot'}});
            any = true;
            var ids = front.map(function(i) { return vals.ids[i]; });
            if (fresh || JSON.stringify(ids) !== JSON.stringify(last.front)) { out[1] = ids; }
            now.front = ids;
        } else {
            now.front = last.front;
        }
        if (changed(['vals', 'x', 'y', 'szs', 'sel'])) {
            var shapes = outlines(settings, selection, vals, xv, yv, now.szs);
            patch.assign(['layout', 'shapes'], shapes);
            any = true;
        }
        if (changed(['vals', 'x', 'y'])) {
            patch.assign(['layout', 'xaxis', 'title'], {text: axisTitle(vals, x)})
                 .assign(['layout', 'yaxis', 'title'], {text: axisTitle(vals, y)})
                 .assign(['layout', 'uirevision'], x + '|' + y);
            any = true;
        }
        last = now;
        if (any) { out[0] = patch.build(); }
        return out;
    }

    /* The selection's outlines alone (a selection change: no trace is touched). */
    function outline(settings, selection, figure) {
        if (!last.vals || !figure || !figure.data || figure.data[1] !== last.models) { return noUpdate(); }
        var sel = JSON.stringify(selection || []);
        if (sel === last.sel) { return noUpdate(); }
        var has = Object.prototype.hasOwnProperty, vals = last.vals;
        var xv = has.call(vals.v, last.x) ? vals.v[last.x] : null, yv = has.call(vals.v, last.y) ? vals.v[last.y] : null;
        last.sel = sel;
        var patch = new window.dash_clientside.Patch();
        return patch.assign(['layout', 'shapes'], outlines(settings, selection, vals, xv, yv, last.szs)).build();
    }

    window.dash_clientside.cncScatter = {draw: draw, outline: outline};
})();
