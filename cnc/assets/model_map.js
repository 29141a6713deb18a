/* Model Map, in the browser (cnc/ui/model_map.py): the encodings of the compact map data,
   elements from it, the hover card, the selection sync and the initial view. Cytoscape is reached through cncCyto
   (assets/cyto_bridge.js) only. */
window.dash_clientside = window.dash_clientside || {};
(function() {
    var CLS = 'cnc-model-map';
    var noUpdate = function() { return window.dash_clientside.no_update; };
    var live = function() { return window.cncCyto ? window.cncCyto.get(CLS) : null; };

    /* Cytoscape elements: column headers, one node per model, one edge per base link. The element
       set is the same for every mode, encoding and filter (unused headers are blank), because
       dash-cytoscape reports a removed element as a selection change. */
    function build(d, texts, keep, zoom) {  // keep: the models to build (edges between two of them), else all
        var n = d.id.length, out = [], i;
        var off = {}, hollow = {};
        (d.off || []).forEach(function(k) { off[k] = true; });
        (d.m || []).forEach(function(k) { hollow[k] = true; });
        (d.heads || []).forEach(function(label, j) {
            var head = {data: {id: 'h' + j, label: label}, position: {x: j * d.dx, y: -d.dy},
                        classes: label ? 'head' : 'head blank', selectable: false};
            out.push(zoom ? Object.assign(head, {style: headStyle(d, zoom)}) : head);
        });
        for (i = 0; i < n; i++) {
            if (keep && !keep[i]) { continue; }
            var data = {id: d.id[i], mid: d.mid[i], label: d.label[i], lt: texts ? texts[i] : '', c: d.c[i], s: d.s[i]};
            if (hollow[i]) { data.m = 1; }
            out.push({data: data, position: {x: d.x[i], y: d.y[i]}, selectable: !off[i],
                      classes: off[i] ? 'off' : ''});
        }
        for (i = 0; i < n; i++) {
            var p = d.base[i];
            if (p < 0 || (keep && !(keep[i] && keep[p]))) { continue; }
            var edge = {id: 'e' + d.id[i].slice(1), source: d.id[p], target: d.id[i]};
            out.push({data: d.plain ? edge : Object.assign(edge, edgeStyle(d, p, i)),
                      classes: off[i] || off[p] ? 'off' : ''});
        }
        return out;
    }

    /* Data of an edge that follows the encodings (small experiments): a gradient between the
       two models' colours, as wide as their mean size allows. */
    function edgeStyle(d, p, i) {
        return {g: d.c[p] + ' ' + d.c[i], w: Math.round((d.s[p] + d.s[i]) / 1.6) / 10};
    }

    function flags(list, n) {
        var f = new Array(n).fill(false);
        (list || []).forEach(function(k) { f[k] = true; });
        return f;
    }

    /* Apply a change of the same experiment's columns to the live cytoscape instance, touching only
       the nodes and edges whose values changed (dash-cytoscape's diff of 10,000 elements costs
       seconds at 5,000 models). Every change of the data passes here, so cytoscape always holds
       the latest values even though the elements prop keeps the first build.
       Restyling is what costs (about 0.1 ms per element on a slow machine, visible or not), so
       what is in view (with a margin) is restyled at once and the rest in idle-time chunks
       (`later`); a pan or zoom, a new change, a re-layout or a selection applies the rest first. */
    function patch(cy, d, last) {
        var n = d.id.length, i, p;
        var off = flags(d.off, n), was = flags(last.off, n), hollow = flags(d.m, n), had = flags(last.m, n);
        var dirty = new Array(n).fill(false), moved = false;
        for (i = 0; i < n && !moved; i++) { moved = d.x[i] !== last.x[i] || d.y[i] !== last.y[i]; }
        var view = moved ? null : viewBox(cy);
        var inView = function(k, j) {  // the box spanned by one or two nodes' positions meets the view
            return !view || (Math.max(d.x[k], d.x[j]) >= view.x1 && Math.min(d.x[k], d.x[j]) <= view.x2 &&
                             Math.max(d.y[k], d.y[j]) >= view.y1 && Math.min(d.y[k], d.y[j]) <= view.y2);
        };
        var now = [], rest = [];
        var queue = function(k, j, fn) { (inView(k, j) ? now : rest).push(fn); };
        for (i = 0; i < n; i++) {
            var change = null;
            // only the values that changed: each one set restyles the node (a size also reroutes its edges)
            if (d.c[i] !== last.c[i]) { change = {c: d.c[i]}; }
            if (d.s[i] !== last.s[i]) { change = Object.assign(change || {}, {s: d.s[i]}); }
            dirty[i] = !!change && !d.plain;
            var cls = off[i] !== was[i], hole = hollow[i] !== had[i], pos = d.x[i] !== last.x[i] || d.y[i] !== last.y[i];
            if (!(change || cls || hole || pos)) { continue; }
            queue(i, i, (function(k, change, cls, hole, pos) {
                return function() {
                    var el = cy.getElementById(d.id[k]);
                    if (change) { el.data(change); }
                    if (hole) { if (hollow[k]) { el.data('m', 1); } else { el.removeData('m'); } }
                    if (cls) {
                        el.toggleClass('off', off[k]);
                        if (off[k]) { el.unselectify(); } else { el.selectify(); }
                    }
                    if (pos) { el.position({x: d.x[k], y: d.y[k]}); }
                };
            })(i, change, cls, hole, pos));
        }
        for (i = 0; i < n; i++) {
            p = d.base[i];
            if (p < 0 || !(dirty[i] || dirty[p] || off[i] !== was[i] || off[p] !== was[p])) { continue; }
            queue(i, p, (function(k, j) {
                return function() {
                    var edge = cy.getElementById('e' + d.id[k].slice(1));
                    if (dirty[k] || dirty[j]) { edge.data(edgeStyle(d, j, k)); }
                    if (off[k] !== was[k] || off[j] !== was[j]) { edge.toggleClass('off', off[k] || off[j]); }
                };
            })(i, p));
        }
        var heads = (d.heads || []).some(function(label, j) { return !last.heads || label !== last.heads[j]; });
        if (!now.length && !rest.length && !heads) { return; }  // nothing new (what `encode` applied already)
        flush(cy);  // the restyles still waiting come first: they bring every element to `last`
        cy.batch(function() {
            now.forEach(function(fn) { fn(); });
            (d.heads || []).forEach(function(label, j) {
                var h = cy.getElementById('h' + j);
                if (h.data('label') !== label) { h.data('label', label); h.toggleClass('blank', !label); }
            });
        });
        later(cy, rest);
    }

    /* The view in model coordinates, grown by half its size on every side. */
    function viewBox(cy) {
        var e = cy.extent(), mx = e.w / 2, my = e.h / 2;
        return {x1: e.x1 - mx, x2: e.x2 + mx, y1: e.y1 - my, y2: e.y2 + my};
    }

    // Deferred restyles of elements out of view. They start once the other views' updates of the
    // same action (the scatterplot's figure) have had time to land, then run a chunk per idle period.
    var pending = [], scheduled = false, CHUNK = 300, START_MS = 300;

    function run(cy, work) { if (work.length) { cy.batch(function() { work.forEach(function(fn) { fn(); }); }); } }

    function flush(cy) { var work = pending; pending = []; run(cy, work); }

    function idle(fn) { return (window.requestIdleCallback || function(f) { return setTimeout(f, 16); })(fn); }

    function afterStart(fn) { setTimeout(function() { idle(fn); }, START_MS); }  // then in an idle period

    function later(cy, work) {
        pending = pending.concat(work);
        if (!cy._cncLater) {  // once per cytoscape instance: moving the view shows everything up to date
            cy._cncLater = true;
            cy.on('viewport', function() { flush(cy); });
        }
        var step = function() {
            run(cy, pending.splice(0, CHUNK));
            if (pending.length) { idle(step); } else { scheduled = false; }
        };
        if (!scheduled && pending.length) {
            scheduled = true;
            afterStart(step);
        }
    }

    var shown = null;  // the map data cytoscape holds: {key, data, node: the id of a model node in its elements prop}
    var partial = null;  // {key} while the elements prop holds only the first view's part (`complete`)

    /* Patch the live cytoscape instance from what it shows to `d`, if it holds this experiment's
       elements; false if it does not (not drawn yet, another experiment). */
    function show(d) {
        var cy = live();
        if (!(cy && shown && shown.key === d.key && cy.getElementById(shown.node).length)) { return false; }
        patch(cy, d, shown.data);
        shown = {key: d.key, data: d, node: shown.node};
        complete();  // a change before the rest of a large map is in: it comes now, with the new values
        return true;
    }

    /* The elements prop is built once per experiment; later changes go to cytoscape directly
       (`patch`). A new column mode also gives a new layout (a re-fit, after the new positions).
       A large map's first elements are those of its first view: cytoscape styles and measures every
       element it holds before its first frame (about 0.6 s for 1,000 models and their edges), so the
       rest is handed over once the page is idle, or before anything needs it (`complete`). */
    function elements(d, layout) {
        if (!d || !d.id || !d.c) { return [noUpdate(), noUpdate()]; }  // `encode` adds the encodings
        var relayout = layout && layout.cncMode !== d.mode ? Object.assign({}, layout, {cncMode: d.mode}) : noUpdate();
        if (show(d)) { return [noUpdate(), relayout]; }
        pending = [];  // restyles of the elements being replaced
        var cy = live(), first = null, texts = null;
        if (cy) {
            var fresh = !cy.elements().length;
            texts = prepare(cy, d, layout);
            first = fresh && window.dash_clientside.set_props ? window.cncMapView.firstPart(d, cy.extent()) : null;
        }
        var els = build(d, texts, first, cy ? cy.zoom() : null);
        shown = {key: d.key, data: d, node: els.length > (d.heads || []).length ? els[(d.heads || []).length].data.id : d.id[0]};
        partial = first ? {key: d.key} : null;
        if (partial) { completeLater(cy); }
        return [els, relayout];
    }

    /* The whole element set of a map drawn in part, built from the latest data (and labels for the
       current zoom), into the elements prop: dash-cytoscape adds what is missing. */
    function complete() {
        var cy = live(), d = shown && shown.data;
        if (!partial || !cy || !d || partial.key !== shown.key) { partial = null; return; }
        partial = null;
        window.dash_clientside.set_props(window.cncCyto.componentId(cy),
                                         {elements: build(d, labelTexts(d, labelStyle(d, cy.zoom())), null, cy.zoom())});
    }

    var settling = false;  // `view` moving the viewport to its first fit: not a user's pan or zoom

    function completeLater(cy) {
        if (!cy._cncComplete) {  // once per cytoscape instance: a pan or zoom needs the whole map
            cy._cncComplete = true;
            cy.on('viewport', function() { if (!settling) { complete(); } });
        }
        afterStart(complete);
    }

    /* Before a new element set goes in: the first view (estimated from the positions, as `view`
       will fit it) and the label rule and texts for its zoom, so that cytoscape styles each element
       once. A rule set after the elements restyles all of them (0.4-0.6 s at 1,000 models, before
       the first frame). A live map that gets new elements (a model logged meanwhile) keeps its view. */
    function prepare(cy, d, layout) {
        if (!cy.elements().length) {
            cy.resize();  // the box's size now: cytoscape measured it when it mounted, before the page settled
            var first = window.cncMapView.firstView(d, layout, cy.width(), cy.height(), [cy.minZoom(), cy.maxZoom()],
                                                    function(z) { return labelBounds(d, z); });
            if (first) { cy.viewport(first); }
        }
        var fit = labelStyle(d, cy.zoom());
        cy._cncHeadsAt = cy.zoom().toFixed(4);  // the titles are built with their style for this zoom
        setRule(cy, d, fit);
        return labelTexts(d, fit);
    }

    /* The encoding columns of the map data, from the VALUES store (assets/encoding.js): only the
       columns that changed, as a Patch (unchanged inputs give the same memoized arrays). The live
       map is restyled here and now, not a dispatch later when the DATA store's change reaches
       `elements` (which then finds nothing new). */
    function encode(color, size, filters, vals, d) {
        if (!vals || !vals.v || !d || !d.id || d.id.length !== vals.n) { return noUpdate(); }
        var enc = window.cncEncode, px = d.px || [10, 30];
        var cols = {mid: vals.ids, c: enc.colours(vals, color), s: enc.sizes(vals, size, px[0], px[1]),
                    m: enc.hollow(vals, size).list, off: enc.passing(vals, filters).off};
        var patch = new window.dash_clientside.Patch(), changed = {}, any = false;
        Object.keys(cols).forEach(function(k) {
            if (d[k] !== cols[k]) { patch.assign([k], cols[k]); changed[k] = cols[k]; any = true; }
        });
        if (!any) { return noUpdate(); }
        if (d.c) { show(Object.assign({}, d, changed)); }
        return patch.build();
    }

    /* The hover card, placed next to the hovered node once its text (fetched per model) is here. */
    function hover(tip, node) {
        if (!node || !tip || !tip.tip || tip.id !== node.id) { return ['', {display: 'none'}]; }
        var box = document.querySelector('.' + CLS), cy = live();
        var left = 12, top = 12;
        if (cy && box) {
            var el = cy.getElementById(node.id);
            if (el && el.length) {
                var p = el.renderedPosition();
                left = Math.max(4, Math.min(p.x + 18, box.clientWidth - 250));
                top = p.y + 14 > box.clientHeight - 110 ? Math.max(4, p.y - 110) : p.y + 14;
            }
        }
        return [tip.tip, {display: 'block', left: left + 'px', top: top + 'px'}];
    }

    /* Apply the shared selection to cytoscape's own selection state (no round trip, no payload). */
    function sync(selection, els) {
        if (!els || !els.length) { return noUpdate(); }
        var index = {}, last = null;
        els.forEach(function(e) { if (e.data && e.data.mid !== undefined) { index[e.data.mid] = e.data.id; last = e.data.id; } });
        if (partial && (selection || []).some(function(m) { return !index[m]; })) { complete(); }  // then again with every node
        var want = {};
        (selection || []).forEach(function(m) { if (index[m]) { want[index[m]] = true; } });
        // After a re-render or new elements cytoscape may not hold the nodes yet: retry briefly.
        var apply = function(attempt) {
            var cy = live();
            if (!cy || (last !== null && !cy.getElementById(last).length)) {
                if (attempt < 40) { setTimeout(function() { apply(attempt + 1); }, 100); }
                return;
            }
            var box = cy.container();
            if (!box._cncCoords) {
                box._cncCoords = true;
                ['mouseover', 'mousedown', 'wheel', 'touchstart'].forEach(function(t) {
                    box.addEventListener(t, function() { var c = live(); if (c) { window.cncCyto.refreshCoords(c); } }, true);
                });
            }
            window.cncCyto.refreshCoords(cy);
            // a node to select may still wait for its deferred selectify: bring every node up to date
            if (Object.keys(want).some(function(id) { var nd = cy.getElementById(id); return nd.length && !nd.selectable(); })) {
                flush(cy);
            }
            cy.batch(function() {
                cy.nodes(':selected').forEach(function(nd) {
                    if (want[nd.id()]) { return; }
                    // cytoscape ignores unselect() on an unselectable (filtered-out) node: lift that for the call
                    var locked = !nd.selectable();
                    if (locked) { nd.selectify(); }
                    nd.unselect();
                    if (locked) { nd.unselectify(); }
                });
                Object.keys(want).forEach(function(id) {
                    var nd = cy.getElementById(id);
                    if (nd.length && !nd.selected()) { nd.select(); }
                });
            });
        };
        apply(0);
        return (selection || []).length;
    }

    /* The initial view (and after each relayout): the whole map if readable so, else a readable zoom
       at the top-left. The Fit button always fits the whole map. */
    function view(layout, fitClicks) {
        var pad = (layout && layout.padding) || 24, minZoom = (layout && layout.cncMinZoom) || 0.5;
        var fitOnly = (window.dash_clientside.callback_context.triggered || []).some(function(t) {
            return t.prop_id.indexOf('.n_clicks') > 0; });
        var show = function(cy, force) {
            var all = cy.elements().not('.blank');  // blank headers pad the other mode's columns
            if (!all.length) { return; }
            settling = !force;
            // until it settles: the labels' size follows the zoom, and each fit makes room for them
            for (var pass = 0; pass < 4; pass++) {
                var before = cy.zoom();
                cy.fit(all, pad);
                if (!force && cy.zoom() < minZoom) {
                    var bb = all.boundingBox(), z = Math.min(minZoom, cy.maxZoom());
                    cy.zoom(z);
                    cy.pan({x: pad - bb.x1 * z, y: pad - bb.y1 * z});
                }
                if (pass > 0 && Math.abs(cy.zoom() - before) <= 0.005 * before) { break; }
                fitLabels(cy);
            }
            settling = false;
            followZoom(cy);
        };
        var apply = function(attempt) {
            var cy = live();
            if (fitOnly) { complete(); }  // the whole map: every element first
            var need = fitOnly && shown ? shown.data.id.length : 1;
            if (!cy || cy.nodes('[mid]').length < need) {
                if (attempt < 50) { setTimeout(function() { apply(attempt + 1); }, 100); }
                return;
            }
            if (fitOnly) { show(cy, true); return; }
            if (!cy._cncView) {  // once per cytoscape instance: every later layout run (mode change)
                cy._cncView = true;
                cy.on('layoutstop', function() { show(cy, false); });
            }
            show(cy, false);
        };
        apply(0);
        return noUpdate();
    }

    /* Labels readable at any zoom, never overlapping: drawn at LABEL_PX on screen (larger only when
       zoomed in past 1), right of their node and just above its outgoing edge, each the longest of
       its texts (shortened by what differs, cnc/analysis/short_labels.py) that fits its room (`gaps`,
       measured as drawn); none where no text fits or rows are closer than a line (the hover card and
       zooming in show them). Applied after each fit and at the end of a zoom. */
    // cytoscape measures a label a little wider than the canvas does: texts are chosen this much short of
    // the room, and cut (an ellipsis) only past it, still clear of the next column
    var ZOOM_SETTLE_MS = 120, SLACK_PX = 3, LEAF_GAP = 2, HEAD_PX = 12;

    function labelStyle(d, z) {
        var px = d.label_px || 11, scale = Math.max(z, 1), font = px * scale / z;  // model units
        var lo = (d.px || [10, 30])[0], big = (d.px || [10, 30])[1], dense = d.dy * z < px * scale + 4;
        var room = function(gap) { return dense ? 0 : (gap - big) * z - 2 * SLACK_PX - 2; };  // screen px
        var margin = function(size) { return ((big - size) / 2 + 2 / z).toFixed(3); };
        // dense: no text fits at any size, so the rule need not follow the zoom (a restyle of every node is dear)
        return {room: room, scale: scale, px: px, zoom: z, key: dense ? 'dense' : z.toFixed(4), style: {
            'font-size': font, 'text-max-width': (room(LEAF_GAP * d.dx) + SLACK_PX) / z,
            'text-margin-y': -(px * scale / 2 + 2) / z,
            // every label of a column starts where its largest node would end: clear of the nodes above
            'text-margin-x': 'mapData(s, ' + [lo, big, margin(lo), margin(big)].join(', ') + ')'}};
    }

    /* How far the labels and column titles reach at zoom z, in model units: the right end of the
       longest label (as `labelTexts` picks them), the column titles' sides and top (one line), for
       `cncMapView.firstView`. */
    function labelBounds(d, z) {
        var fit = labelStyle(d, z), texts = labelTexts(d, fit), family = labelFamily(d);
        var start = (d.px || [10, 30])[1] / 2 + 2 / z, right = -Infinity;
        texts.forEach(function(text, i) {
            if (text) { right = Math.max(right, d.x[i] + start + (textWidth(text, fit.px, family) * fit.scale + 2) / z); }
        });
        var head = d.head || [0, 0], last = (d.heads || []).reduce(function(k, h, j) { return h ? j : k; }, -1);
        if (last >= 0) { right = Math.max(right, last * d.dx + head[0] / 2); }
        return {left: last >= 0 ? -head[0] / 2 : Infinity, right: right,
                top: -d.dy - head[1] / 2 - 1.2 * HEAD_PX * Math.max(z, 1) / z};
    }

    /* Each node's room for its label, in model units: up to the next node right of it in its row or
       in the row above (the label sits between the two rows), or LEAF_GAP columns when none is. */
    function gaps(d) {
        if (d._gaps && d._gaps.x === d.x) { return d._gaps.gap; }
        var rows = {}, row = function(i) { return Math.round(d.y[i] / d.dy); };
        d.x.forEach(function(x, i) { (rows[row(i)] = rows[row(i)] || []).push(x); });
        Object.keys(rows).forEach(function(r) { rows[r].sort(function(a, b) { return a - b; }); });
        var next = function(xs, x) {  // the first position right of x (xs sorted), or Infinity
            var lo = 0, hi = xs ? xs.length : 0;
            while (lo < hi) { var mid = (lo + hi) >> 1; if (xs[mid] <= x) { lo = mid + 1; } else { hi = mid; } }
            return xs && lo < xs.length ? xs[lo] : Infinity;
        };
        var gap = d.x.map(function(x, i) {
            return Math.min(next(rows[row(i)], x), next(rows[row(i) - 1], x), x + LEAF_GAP * d.dx) - x;
        });
        Object.defineProperty(d, '_gaps', {value: {x: d.x, gap: gap}, configurable: true});  // not sent back
        return gap;
    }

    // Widths of label texts at the base font size, measured as the canvas draws them (cytoscape does too)
    var widths = {}, pen = null;
    function textWidth(text, px, family) {
        var key = px + ' ' + family + ' ' + text;
        if (widths[key] === undefined) {
            pen = pen || document.createElement('canvas').getContext('2d');
            pen.font = px + 'px ' + family;
            widths[key] = pen.measureText(text).width;
        }
        return widths[key];
    }

    function cssFamily(list) {  // "Helvetica Neue, sans-serif" as a canvas font takes it: names with spaces quoted
        return list.split(',').map(function(f) {
            f = f.trim();
            return /\s/.test(f) && !/^["']/.test(f) ? '"' + f + '"' : f;
        }).join(', ');
    }

    function labelFamily(d) { return cssFamily(d.label_font || 'sans-serif'); }  // as the canvas measures it

    function labelText(d, i, room, fit, tiers, family) {  // the longest of model i's texts within `room`, or none
        for (var t = 0; t <= tiers; t++) {
            var text = t ? d.short[t - 1][i] : d.label[i];
            if (t && /…$/.test(text)) { continue; }  // a shorter text cut at its end lost what differs: none rather
            if (text && textWidth(text, fit.px, family) * fit.scale <= room - SLACK_PX) { return text; }
        }
        return '';
    }

    /* Every model's label text for the rule `fit` (`labelStyle`). */
    function labelTexts(d, fit) {
        var gap = gaps(d), tiers = (d.short || []).length, family = labelFamily(d);
        return d.id.map(function(_, i) { return labelText(d, i, fit.room(gap[i]), fit, tiers, family); });
    }

    /* The rule after the map's stylesheet (one restyle of everything, not one per node): set only
       when the texts' size or room changed. */
    function setRule(cy, d, fit) {
        cy._cncLabels = fit.key;
        cy._cncLabelZoom = fit.zoom;
        cy._cncLabelsAt = d.x;
        cy._cncStyle = cy._cncStyle || cy.style().json();
        if (fit.key !== 'dense') {  // dense: every text is empty, whatever the rule says
            (cy._cncRules = cy._cncRules || []).push(cy.nodes().length);  // how many nodes each rule restyled
            cy.style().fromJson(cy._cncStyle.concat([{selector: 'node[c]', style: fit.style}])).update();
        }
    }

    // A rule set for a zoom up to this much smaller is kept (labels a little larger on screen, never
    // under LABEL_PX): the first view is estimated, on the small side, before cytoscape measures it
    var RULE_TOLERANCE = 0.03;

    function changed(cy, fit) {  // does `fit` need another rule than the one set?
        if (cy._cncLabels === fit.key) { return false; }
        if (cy._cncLabels === 'dense' || fit.key === 'dense' || !cy._cncLabelZoom) { return true; }
        var grown = fit.zoom / cy._cncLabelZoom - 1;
        return grown < 0 || grown > RULE_TOLERANCE;
    }

    /* Column titles (a few nodes: their own style per zoom): as readable, wrapped within their
       column, above the first row's labels. */
    function headStyle(d, z) {
        return {'font-size': HEAD_PX * Math.max(z, 1) / z, 'text-max-width': d.dx - 12, 'text-wrap': 'wrap',
                'text-valign': 'top', 'text-opacity': d.dx * z < 48 ? 0 : 1};
    }

    /* The labels for the current zoom: the rule and each node's text as data (`lt`), set only where
       it changes. */
    function fitLabels(cy) {
        var d = shown && shown.data;
        if (!d || !d.dx || !d.s) { return; }
        var z = cy.zoom(), fit = labelStyle(d, z);
        var heads = z.toFixed(4), labels = cy._cncLabelsAt !== d.x || changed(cy, fit);
        if (!labels && cy._cncHeadsAt === heads) { return; }  // same zoom, same positions
        cy.batch(function() {
            cy.nodes('.head').style(headStyle(d, z));
            cy._cncHeadsAt = heads;
            if (!labels) { return; }
            var texts = labelTexts(d, fit);
            d.id.forEach(function(id, i) {
                var n = cy.getElementById(id);
                if (n.length && n.data('lt') !== texts[i]) { n.data('lt', texts[i]); }
            });
            setRule(cy, d, fit);
        });
    }

    function followZoom(cy) {
        if (cy._cncZoom) { return; }
        var timer = null;
        cy._cncZoom = true;
        cy.on('zoom', function() {
            clearTimeout(timer);
            timer = setTimeout(function() { fitLabels(cy); }, ZOOM_SETTLE_MS);
        });
    }

    /* Restyles still waiting for idle time (0 once every element shows the latest data). */
    function pendingCount() { return pending.length + (partial ? 1 : 0); }

    window.dash_clientside.cncMap = {encode: encode, elements: elements, hover: hover, sync: sync, view: view, pending: pendingCount};
})();
