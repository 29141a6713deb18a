/* Filters in the browser (cnc/ui/filters.py): the filters as drawn — the server's filter list
   with a brush on a histogram applied at once (the server's answer, which also redraws the
   histogram and the bounds, replaces it when it lands) — the models passing them and the count. */
window.dash_clientside = window.dash_clientside || {};
(function() {
    var noUpdate = function() { return window.dash_clientside.no_update; };

    /* A brush (a horizontal selection on a histogram) as (lo, hi), rounded for humans as the
       server rounds it (4 significant digits); null when the event is not a brush. */
    function brush(selected) {
        var x = selected && selected.range && selected.range.x;
        if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== 'number' || typeof x[1] !== 'number') { return null; }
        var four = function(v) { return Number(v.toPrecision(4)); };
        return [four(Math.min(x[0], x[1])), four(Math.max(x[0], x[1]))];
    }

    function sameIds(a, b) {
        if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) { return false; }
        for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false; } }
        return true;
    }

    function drawn(filters, selected, vals, drawnNow, enabled) {
        if (!vals || !vals.v) { return [noUpdate(), noUpdate(), noUpdate()]; }
        var out = Array.isArray(filters) ? filters : [];
        var ctx = window.dash_clientside.callback_context, trig = ctx && ctx.triggered_id;
        // a histogram event alone: a brush (or an echo); with the filters too, the filters rule
        if (trig && typeof trig === 'object' && trig.role === 'hist' && ctx.triggered.length === 1) {
            var k = (ctx.inputs_list[1] || []).findIndex(function(item) { return item.id.metric === trig.metric; });
            var range = k >= 0 ? brush(ctx.inputs_list[1][k].value) : null;
            if (range) {
                out = out.map(function(f) { return Array.isArray(f) && f[0] === trig.metric ? [f[0], range[0], range[1]] : f; });
            } else {
                return [noUpdate(), noUpdate(), noUpdate()];  // a redraw's echo, or a click (the server clears)
            }
        }
        var pass = window.cncEncode.passing(vals, out);
        var sameDrawn = JSON.stringify(out) === JSON.stringify(drawnNow);
        if (sameIds(pass.ids, enabled)) {
            return [sameDrawn ? noUpdate() : out, noUpdate(), noUpdate()];
        }
        return [sameDrawn ? noUpdate() : out, pass.ids, pass.ids.length + ' of ' + vals.n + ' models pass'];
    }

    window.dash_clientside.cncFilters = {drawn: drawn};
})();
