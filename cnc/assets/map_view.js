/* The Model Map's first view, from its data alone (cnc/ui/model_map.py `map_data`), before
   cytoscape holds any element: where `cncMap.view` will settle, and which models that view shows.
   Pure functions of the data and the box; assets/model_map.js applies them. */
window.cncMapView = (function() {
    var BORDER = 1.5;  // what cytoscape's bounding box adds around a node for its border

    function range(values, r) {
        var lo = Infinity, hi = -Infinity;
        for (var i = 0; i < values.length; i++) { lo = Math.min(lo, values[i]); hi = Math.max(hi, values[i]); }
        return [lo - r, hi + r];
    }

    /* {zoom, pan} of a `w` x `h` px box: the whole map when it fits at the layout's `cncMinZoom` or
       more, else that zoom at its top-left corner; `zooms`: the map's [min, max] zoom. From the
       positions, the largest node size and `labels(z)` ({left, right, top}: how far labels and column
       titles reach at zoom z, model units), settled over a few passes as `cncMap.view` settles its
       fit. Null while the box has no size. */
    function firstView(d, layout, w, h, zooms, labels) {
        var pad = (layout && layout.padding) || 24, minZoom = (layout && layout.cncMinZoom) || 0.5;
        var r = (d.px || [10, 30])[1] / 2 + BORDER, xs = range(d.x, r), ys = range(d.y, r);
        if (!(w > 2 * pad && h > 2 * pad && isFinite(xs[0] + xs[1] + ys[0] + ys[1]))) { return null; }
        var heads = (d.heads || []).some(Boolean);
        var box = function(z) {  // [x1, x2, y1, y2] at zoom z
            var reach = labels(z);
            return [Math.min(xs[0], reach.left), Math.max(xs[1], reach.right), heads ? Math.min(ys[0], reach.top) : ys[0], ys[1]];
        };
        var fit = function(b) {
            var z = Math.min((w - 2 * pad) / Math.max(b[1] - b[0], 1), (h - 2 * pad) / Math.max(b[3] - b[2], 1));
            return Math.max(zooms[0], Math.min(zooms[1], z));
        };
        var z = fit([xs[0], xs[1], ys[0], ys[1]]), b;
        for (var pass = 0; pass < 3; pass++) { b = box(z); z = fit(b); }
        if (z < minZoom) {
            z = Math.min(minZoom, zooms[1]);
            b = box(z);
            return {zoom: z, pan: {x: pad - b[0] * z, y: pad - b[2] * z}};
        }
        b = box(z);
        return {zoom: z, pan: {x: (w - z * (b[0] + b[1])) / 2, y: (h - z * (b[2] + b[3])) / 2}};
    }

    /* Which models the view `extent` (cytoscape's, model coordinates) shows: each model whose node
       or label may reach into it (two columns left of it, a row above and below), and both ends of
       every edge that crosses it (an edge runs within the box its two models span). No more: any
       pan or zoom brings the rest. Null when that is every model. */
    function firstPart(d, extent) {
        var x1 = extent.x1 - 2 * d.dx, x2 = extent.x2 + d.dx, y1 = extent.y1 - d.dy, y2 = extent.y2 + d.dy;
        var meets = function(a, b) {
            return Math.max(d.x[a], d.x[b]) >= x1 && Math.min(d.x[a], d.x[b]) <= x2 &&
                   Math.max(d.y[a], d.y[b]) >= y1 && Math.min(d.y[a], d.y[b]) <= y2;
        };
        var keep = d.x.map(function(_, i) { return meets(i, i); });
        d.base.forEach(function(p, i) { if (p >= 0 && meets(p, i)) { keep[p] = keep[i] = true; } });
        return keep.every(Boolean) ? null : keep;
    }

    return {firstView: firstView, firstPart: firstPart};
})();
